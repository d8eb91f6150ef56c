package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/store"
)

// The rules screen's API: admins only; a bad value is refused naming the
// rule and changes nothing; a change is audited with old and new values
// and applies to the next decision (a holiday moves a submission deadline,
// the median decides a panel, a new fee is charged to new registrations).
func TestCertRulesAPI(t *testing.T) {
	e := newCertEnv(t, `{"room_capacity":15}`)
	admin := e.login(e.admin)
	prog := e.exam.ProgrammeID
	rulesURL := fmt.Sprintf("/api/admin/programmes/%d/rules", prog)
	levelURL := func(code string) string { return fmt.Sprintf("/api/admin/levels/%d", e.levels[code]) }

	alice, reg := e.registerPaidSeated(t)
	for _, c := range []struct {
		who          *http.Client
		method, path string
		body         any
	}{
		{alice, "GET", rulesURL, nil},
		{alice, "PUT", rulesURL, map[string]any{"pass_mark": 1}},
		{e.login(e.reviewers[0]), "PUT", rulesURL, map[string]any{"score_method": "median"}},
		{e.login(e.invA), "PUT", levelURL("junior"), map[string]any{"fee_cents": 0}},
	} {
		code, b := call(t, e.examEnv, c.who, c.method, c.path, c.body)
		expect(t, c.method+" "+c.path, code, b, 403, "forbidden")
	}

	code, b := call(t, e.examEnv, admin, "GET", rulesURL, nil)
	expect(t, "get rules", code, b, 200, "")
	got := decode[certify.ProgrammeRules](t, b)
	if got.Rules.PassMark != 80 || got.Rules.ScoreMethod != certify.Mean || got.Rules.Holidays == nil || len(got.Levels) != 3 ||
		got.Levels[1].FeeCents != 1200_00 || strings.Join(got.Levels[1].Components, ",") != "theory,practical" {
		t.Fatalf("rules: %s", b)
	}

	var before store.Programme
	e.db.Take(&before, prog)
	var levelBefore store.Level
	e.db.Take(&levelBefore, e.levels["intermediate"])
	for _, c := range []struct {
		what  string
		path  string
		body  string
		rules string // the rules named, comma-separated
	}{
		{"pass mark over 100 and an even panel", rulesURL, `{"pass_mark":120,"min_panel_size":4}`, "pass_mark,min_panel_size"},
		{"a holiday that is no date", rulesURL, `{"holidays":["2026-02-30"]}`, "holidays"},
		{"a working weekend on a weekday", rulesURL, `{"working_weekends":["2026-09-28"]}`, "working_weekends"},
		{"score by mode", rulesURL, `{"score_method":"mode"}`, "score_method"},
		{"uploads of a gigabyte", rulesURL, `{"max_upload_bytes":1073741824}`, "max_upload_bytes"},
		{"an unknown education", rulesURL, `{"min_education":"none"}`, "min_education"},
		{"no invigilator", rulesURL, `{"invigilator_ratio":0,"min_invigilators_per_room":0}`, "invigilator_ratio,min_invigilators_per_room"},
		{"negative retakes and fee", rulesURL, `{"retakes_per_component":-1,"retake_fee_cents":-1,"dedicated_retake_threshold":-1}`,
			"retakes_per_component,retake_fee_cents,dedicated_retake_threshold"},
		{"no working days", rulesURL, `{"submission_working_days":0}`, "submission_working_days"},
		{"a misspelt rule", rulesURL, `{"pass_mrk":60}`, "pass_mrk"},
		{"a pass mark as text", rulesURL, `{"pass_mark":"80"}`, "pass_mark"},
		{"a negative fee", levelURL("intermediate"), `{"fee_cents":-1}`, "fee_cents"},
		{"a level without theory", levelURL("intermediate"), `{"components":["practical"]}`, "components"},
		{"negative hours", levelURL("intermediate"), `{"training_hours":-8}`, "training_hours"},
	} {
		code, b := call(t, e.examEnv, admin, "PUT", c.path, []byte(c.body))
		expect(t, c.what, code, b, 400, "rule_value")
		var reply struct{ Rules []certify.RuleProblem }
		json.Unmarshal(b, &reply)
		var named []string
		for _, p := range reply.Rules {
			named = append(named, p.Rule)
		}
		if strings.Join(named, ",") != c.rules {
			t.Errorf("%s: names %v, want %s (%s)", c.what, named, c.rules, b)
		}
	}
	var after store.Programme
	e.db.Take(&after, prog)
	var levelAfter store.Level
	e.db.Take(&levelAfter, e.levels["intermediate"])
	var audits int64
	e.db.Model(&store.AuditEvent{}).Where("action IN ?", []string{"programme_rules_changed", "level_rules_changed"}).Count(&audits)
	if after.Rules != before.Rules || levelAfter != levelBefore || audits != 0 {
		t.Fatalf("refused changes changed something: %q → %q, %+v → %+v, %d audits", before.Rules, after.Rules, levelBefore, levelAfter, audits)
	}
	code, b = call(t, e.examEnv, admin, "PUT", fmt.Sprintf("/api/admin/programmes/%d/rules", 9999), map[string]any{"pass_mark": 70})
	expect(t, "an unknown programme", code, b, 404, "not_found")

	// Alice passes theory: her plan is due ten working days later.
	e.passTheory(alice, reg.Components[0].Sittings[0].AttemptID)
	deadline := func() time.Time {
		return *e.path(alice)[0].Components[1].Sittings[0].Deadline
	}
	was := deadline()
	// A week of holidays from tomorrow (China time) moves it by its working days.
	var holidays []string
	today := e.clock.now().In(certify.China)
	moved := 0
	for i := 1; i <= 7; i++ {
		d := today.AddDate(0, 0, i)
		holidays = append(holidays, d.Format(time.DateOnly))
		if d.Weekday() != time.Saturday && d.Weekday() != time.Sunday {
			moved++
		}
	}
	code, b = call(t, e.examEnv, admin, "PUT", rulesURL, map[string]any{"score_method": "median", "holidays": holidays})
	expect(t, "set median and holidays", code, b, 200, "")
	if got := decode[certify.ProgrammeRules](t, b).Rules; got.ScoreMethod != certify.Median || len(got.Holidays) != 7 || got.PassMark != 80 {
		t.Fatalf("after the change: %+v", got)
	}
	e.db.Take(&after, prog)
	if !strings.Contains(after.Rules, `"room_capacity":15`) || !strings.Contains(after.Rules, `"score_method":"median"`) {
		t.Fatalf("stored rules: %s", after.Rules)
	}
	var ev store.AuditEvent
	if err := e.db.Where("action = ? AND actor_id = ?", "programme_rules_changed", e.admin.id).Take(&ev).Error; err != nil {
		t.Fatal("the change is not audited")
	}
	var detail struct{ Old, New map[string]any }
	json.Unmarshal([]byte(ev.Detail), &detail)
	if detail.Old["score_method"] != "mean" || detail.New["score_method"] != "median" || len(detail.New["holidays"].([]any)) != 7 || len(detail.New) != 2 {
		t.Fatalf("audit detail: %s", ev.Detail)
	}
	if now := deadline(); now.Sub(was) < time.Duration(moved)*24*time.Hour {
		t.Fatalf("the holidays did not move the deadline by %d working days: %v → %v", moved, was, now)
	}

	// The fee of a level changes for new registrations only; so do its components.
	code, b = call(t, e.examEnv, admin, "PUT", levelURL("intermediate"), map[string]any{"fee_cents": 1500_00, "components": []string{"review", "theory"}})
	expect(t, "set the intermediate level", code, b, 200, "")
	if l := decode[certify.LevelRules](t, b); l.FeeCents != 1500_00 || l.TrainingHours != 72 || strings.Join(l.Components, ",") != "theory,review" {
		t.Fatalf("level after the change: %s", b)
	}
	if p := e.path(alice)[0]; p.Fees[0].AmountCents != 1200_00 || p.Components[1].Component != "practical" {
		t.Fatalf("alice's registration changed with the level: %+v", p)
	}
	bob := e.login(e.bob)
	code, b = call(t, e.examEnv, bob, "POST", "/api/cert/registrations", map[string]any{"level_id": e.levels["intermediate"],
		"name": "李四", "id_number": idNumber("31010119951010789"), "education": "bachelor", "training_hours": 72})
	expect(t, "bob registers", code, b, 201, "")
	if p := e.path(bob)[0]; p.Fees[0].AmountCents != 1500_00 || p.Components[1].Component != "review" {
		t.Fatalf("bob's registration: %+v", p)
	}
	e.db.Model(&store.AuditEvent{}).Where("action = ? AND object_id = ?", "level_rules_changed", fmt.Sprint(e.levels["intermediate"])).Count(&audits)
	if audits != 1 {
		t.Fatal("the level change is not audited")
	}

	// Median: 95, 95 and 30 pass (the mean, 73.33, would fail).
	plan := reg.Components[1].Sittings[0].ID
	code, b = call(t, e.examEnv, alice, "POST", fmt.Sprintf("/api/cert/sittings/%d/document?name=plan.pdf", plan), []byte("%PDF-1.7 the plan"))
	expect(t, "upload", code, b, 201, "")
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/sittings/%d/panel", plan),
		map[string]any{"members": []int64{e.reviewers[0].id, e.reviewers[1].id, e.reviewers[2].id}})
	expect(t, "form the panel", code, b, 200, "")
	for i, s := range []float64{95, 95, 30} {
		code, b = call(t, e.examEnv, e.login(e.reviewers[i]), "POST", fmt.Sprintf("/api/panel/%d/score", plan), map[string]any{"score": s, "comment": "c"})
		expect(t, "score", code, b, 200, "")
	}
	if it := decode[certify.PanelItem](t, b); it.Score == nil || *it.Score != 95 || !*it.Passed {
		t.Fatalf("the median did not decide: %s", b)
	}
}
