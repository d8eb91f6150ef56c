package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

// console opens a console socket on a room for a logged-in staff client.
func (e *examEnv) console(hc *http.Client, room int64) (*client, *http.Response, error) {
	return e.open(hc, fmt.Sprintf("/ws/console?room=%d", room))
}

func TestPageSignalsBecomeFlagsOnTheConsole(t *testing.T) {
	forEachDB(t, 2, func(t *testing.T, e *examEnv) {
		cand := e.connect(e.cands[0])
		cand.start()
		con, _, err := e.console(e.login(e.invA), e.room)
		if err != nil {
			t.Fatal(err)
		}
		room := con.await("room snapshot", is("room"))["room"].(map[string]any)
		if n := len(room["candidates"].([]any)); n != 2 {
			t.Fatalf("invA sees %d candidates, want 2", n)
		}
		// A paste is flagged at once; an absence of 8 s reported after a
		// reconnect (start and end together) counts the page's 8 s.
		cand.send(map[string]any{"type": "signal", "id": 1, "kind": "paste", "phase": "instant"})
		cand.send(map[string]any{"type": "signal", "id": 2, "kind": "page_hidden", "phase": "start"})
		cand.send(map[string]any{"type": "signal", "id": 3, "kind": "page_hidden", "phase": "end", "detail": map[string]any{"duration_ms": 8000}})
		cand.send(map[string]any{"type": "signal", "id": 4, "kind": "telepathy", "phase": "instant"})
		for i := 1; i <= 3; i++ {
			cand.await("ack", is("ack", "id", i))
		}
		if m := cand.await("error", is("error", "id", 4)); m["code"] != "bad_signal" {
			t.Fatalf("unknown signal: %v", m)
		}
		seen := map[string]map[string]any{}
		for len(seen) < 2 {
			f := con.await("flag", is("flag"))["flag"].(map[string]any)
			seen[f["kind"].(string)] = f
		}
		hidden := seen["page_hidden"]["reason"].(map[string]any)
		if !strings.Contains(hidden["zh"].(string), "离开考试页面 8 秒") || seen["paste"]["severity"] != "warning" {
			t.Fatalf("flags %v", seen)
		}
		// The candidate is told, in plain words.
		n := cand.await("notice", is("notice"))
		if !strings.Contains(fmt.Sprint(n["message"]), "监考老师可以看到") {
			t.Fatalf("notice %v", n)
		}
		var flags []store.Flag
		e.db.Where("attempt_id = ?", e.cands[0].attempt).Find(&flags)
		var sigs int64
		e.db.Model(&store.Signal{}).Where("attempt_id = ?", e.cands[0].attempt).Count(&sigs)
		if len(flags) != 2 || sigs < 3 {
			t.Fatalf("%d flags, %d signals stored", len(flags), sigs)
		}
		// A second login is a critical flag, raised by the server.
		e.connect(e.cands[0])
		for {
			f := con.await("second_login flag", is("flag"))["flag"].(map[string]any)
			if f["kind"] == "second_login" {
				if f["severity"] != "critical" {
					t.Fatalf("second login %v", f)
				}
				break
			}
		}
	})
}

func TestProctorAuthorisationMatrix(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	e.connect(e.cands[0]).start()
	attempt := e.cands[0].attempt
	clients := map[string]*http.Client{
		"admin": e.login(e.admin), "invA": e.login(e.invA), "invB": e.login(e.invB), "chief": e.login(e.chief),
		"invD": e.login(e.invD), "reviewer": e.login(e.reviewer), "candidate": e.login(e.cands[0]), "anonymous": {},
	}
	type row struct {
		method, path string
		body         any
		want         map[string]int
	}
	allow := func(ok int, who ...string) map[string]int {
		m := map[string]int{"admin": ok, "invA": ok, "chief": ok, "invB": 403, "invD": 403, "reviewer": 403, "candidate": 403, "anonymous": 401}
		for _, w := range who {
			m[w] = ok
		}
		return m
	}
	rows := []row{
		{"GET", fmt.Sprintf("/api/proctor/rooms/%d", e.room), nil, allow(200, "invB")},
		{"GET", fmt.Sprintf("/api/proctor/attempts/%d/flags", attempt), nil, allow(200)},
		{"POST", fmt.Sprintf("/api/proctor/attempts/%d/messages", attempt), map[string]string{"body": "请把手机放远一些"}, allow(201)},
		{"POST", fmt.Sprintf("/api/proctor/attempts/%d/warnings", attempt), map[string]string{"body": "第一次警告"}, allow(201)},
		{"GET", "/api/proctor/rooms", nil, map[string]int{"admin": 200, "invA": 200, "invB": 200, "chief": 200, "invD": 200, "reviewer": 403, "candidate": 403, "anonymous": 401}},
	}
	for _, r := range rows {
		for who, want := range r.want {
			if code, out := call(t, e, clients[who], r.method, r.path, r.body); code != want {
				t.Errorf("%s %s %s: %d, want %d (%s)", who, r.method, r.path, code, want, out)
			}
		}
	}
	// What each sees of room R01: the responsible invigilator and the chief
	// their candidate; invB (same room, not responsible) nobody.
	for who, n := range map[string]int{"admin": 1, "invA": 1, "chief": 1, "invB": 0} {
		_, out := call(t, e, clients[who], "GET", fmt.Sprintf("/api/proctor/rooms/%d", e.room), nil)
		var v proctor.RoomView
		json.Unmarshal(out, &v)
		if len(v.Candidates) != n {
			t.Errorf("%s sees %d candidates in R01, want %d", who, len(v.Candidates), n)
		}
	}
	// The console socket follows the same rules.
	for who, want := range map[string]int{"admin": 101, "invA": 101, "invB": 101, "chief": 101, "invD": 403, "candidate": 403, "anonymous": 401} {
		_, resp, err := e.console(clients[who], e.room)
		got := 101
		if err != nil {
			got = resp.StatusCode
		}
		if got != want {
			t.Errorf("console for %s: %d, want %d", who, got, want)
		}
	}
	// Flag decisions: only those who may see the attempt.
	cand := e.connect(e.cands[0])
	cand.send(map[string]any{"type": "signal", "id": 1, "kind": "paste", "phase": "instant"})
	cand.await("ack", is("ack", "id", 1))
	var f store.Flag
	for range 100 {
		if e.db.Where("attempt_id = ?", attempt).Take(&f).Error == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	path := fmt.Sprintf("/api/proctor/flags/%d/decision", f.ID)
	// (Reviewers decide flags too, after the exam; the responsible
	// invigilator decides last here.)
	for _, c := range []struct {
		who  string
		want int
	}{{"invB", 403}, {"invD", 403}, {"candidate", 403}, {"anonymous", 401}, {"reviewer", 200}, {"invA", 200}} {
		if code, out := call(t, e, clients[c.who], "POST", path, map[string]string{"decision": "dismiss", "note": "考生在整理草稿纸"}); code != c.want {
			t.Errorf("%s decides: %d, want %d (%s)", c.who, code, c.want, out)
		}
	}
	e.db.Take(&f, f.ID)
	if f.Status != "dismissed" || f.DecidedBy == nil || *f.DecidedBy != e.invA.id || f.Note != "考生在整理草稿纸" {
		t.Fatalf("decision not stored: %+v", f)
	}
}

func TestMessageWarningAcknowledgeAndEnd(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	cand := e.connect(e.cands[0])
	cand.start()
	inv := e.login(e.invA)
	con, _, err := e.console(inv, e.room)
	if err != nil {
		t.Fatal(err)
	}
	con.await("room", is("room"))
	attempt := e.cands[0].attempt
	code, out := call(t, e, inv, "POST", fmt.Sprintf("/api/proctor/attempts/%d/warnings", attempt), map[string]string{"body": "请不要离开考试页面"})
	if code != 201 {
		t.Fatalf("warning: %d %s", code, out)
	}
	m := cand.await("warning", is("proctor_message"))
	if m["kind"] != "warning" || m["body"] != "请不要离开考试页面" || m["warnings"].(float64) != 1 {
		t.Fatalf("candidate got %v", m)
	}
	cand.send(map[string]any{"type": "message_ack", "id": "a1", "message_id": m["id"]})
	cand.await("ack", is("ack", "id", "a1"))
	a := con.await("ack on the console", is("activity"))["activity"].(map[string]any)
	if a["type"] != "message_ack" || a["message_id"] != m["id"] {
		t.Fatalf("console activity %v", a)
	}
	// Acknowledging someone else's message is refused.
	cand.send(map[string]any{"type": "message_ack", "id": "a2", "message_id": 999})
	if m := cand.await("error", is("error", "id", "a2")); m["code"] != "no_message" {
		t.Fatalf("foreign ack: %v", m)
	}
	if code, _ := call(t, e, inv, "POST", fmt.Sprintf("/api/proctor/attempts/%d/terminate", attempt), map[string]string{"reason": " "}); code != 400 {
		t.Fatalf("terminate without a reason: %d", code)
	}
	if code, out := call(t, e, inv, "POST", fmt.Sprintf("/api/proctor/attempts/%d/terminate", attempt), map[string]string{"reason": "使用手机查阅资料"}); code != 200 {
		t.Fatalf("terminate: %d %s", code, out)
	}
	ended := cand.await("ended", is("ended", "status", "terminated"))
	if ended["reason"] != "使用手机查阅资料" {
		t.Fatalf("ended %v", ended)
	}
	if at := e.attempt(attempt); at.Status != "terminated" || at.Passed == nil || *at.Passed {
		t.Fatalf("attempt %+v", at)
	}
	var actions []string
	e.db.Model(&store.AuditEvent{}).Where("actor_id = ? AND action <> ?", e.invA.id, "login").Order("id").Pluck("action", &actions)
	if strings.Join(actions, ",") != "proctor_warning,attempt_terminated" {
		t.Fatalf("audit %v", actions)
	}
}

func TestAssignmentRules(t *testing.T) {
	e := newExamEnv(t, "sqlite", 3)
	admin := e.login(e.admin)
	var seats []store.Seat
	e.db.Where("room_id = ?", e.room).Order("seat_no").Find(&seats)
	for _, tc := range []struct {
		name, method, path string
		body               any
		code               int
		rule               string
	}{
		{"responsible invigilator from another room", "PUT", fmt.Sprintf("/api/admin/seats/%d/invigilator", seats[0].ID), map[string]int64{"user_id": e.invD.id}, 409, "rule_one_responsible"},
		{"room left with one invigilator", "DELETE", fmt.Sprintf("/api/admin/rooms/%d/invigilators/%d", e.room, e.invB.id), nil, 409, "rule_min_invigilators"},
		{"a reviewer cannot invigilate", "POST", fmt.Sprintf("/api/admin/rooms/%d/invigilators", e.room), map[string]int64{"user_id": e.reviewer.id}, 409, "rule_one_responsible"},
		{"balance", "POST", fmt.Sprintf("/api/admin/rooms/%d/balance", e.room), nil, 200, ""},
		{"reassign within the room", "PUT", fmt.Sprintf("/api/admin/seats/%d/invigilator", seats[0].ID), map[string]int64{"user_id": e.invB.id}, 200, ""},
	} {
		code, out := call(t, e, admin, tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(string(out), tc.rule) {
			t.Errorf("%s: %d %s", tc.name, code, out)
		}
	}
	load := map[int64]int{}
	e.db.Where("room_id = ?", e.room).Find(&seats)
	for _, s := range seats {
		load[*s.InvigilatorID]++
	}
	if load[e.invA.id]+load[e.invB.id] != 3 || load[e.invA.id] == 0 || load[e.invB.id] == 0 {
		t.Fatalf("loads after balancing %v", load)
	}
	// With a ratio of one, a second candidate for one invigilator is refused.
	e.db.Model(&store.Programme{}).Where("id = 1").Update("rules", `{"invigilator_ratio":1,"min_invigilators_per_room":2,"room_capacity":15}`)
	code, out := call(t, e, admin, "PUT", fmt.Sprintf("/api/admin/seats/%d/invigilator", seats[1].ID), map[string]int64{"user_id": e.invB.id})
	if code != 409 || !strings.Contains(string(out), "rule_ratio") || !strings.Contains(string(out), "already has") {
		t.Fatalf("ratio: %d %s", code, out)
	}
	if code, out := call(t, e, admin, "POST", fmt.Sprintf("/api/admin/rooms/%d/balance", e.room), nil); code != 409 || !strings.Contains(string(out), "rule_ratio") {
		t.Fatalf("balance 3 candidates over 2 invigilators at ratio 1: %d %s", code, out)
	}
	if code, _ := call(t, e, e.login(e.invA), "POST", fmt.Sprintf("/api/admin/rooms/%d/balance", e.room), nil); code != 403 {
		t.Fatal("an invigilator balanced a room")
	}
}

func TestProctorRulesPerExam(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	admin := e.login(e.admin)
	path := fmt.Sprintf("/api/admin/exams/%d/proctor-rules", e.exam.ID)
	for _, bad := range []string{`{"telepathy":{}}`, `{"paste":{"threshold":"soon"}}`, `[`} {
		if code, out := call(t, e, admin, "PUT", path, []byte(bad)); code != 400 {
			t.Errorf("%s: %d %s", bad, code, out)
		}
	}
	if code, _ := call(t, e, e.login(e.invA), "PUT", path, []byte(`{}`)); code != 403 {
		t.Errorf("an invigilator changed the rules: %d", code)
	}
	if code, out := call(t, e, admin, "PUT", path, []byte(`{"paste":{"severity":"critical"}}`)); code != 200 {
		t.Fatalf("set rules: %d %s", code, out)
	}
	code, out := call(t, e, admin, "GET", path, nil)
	if code != 200 || !strings.Contains(string(out), `"paste":{"threshold":"0s","severity":"critical"`) {
		t.Fatalf("get rules: %d %s", code, out)
	}
	cand := e.connect(e.cands[0])
	cand.start()
	cand.send(map[string]any{"type": "signal", "id": 1, "kind": "paste", "phase": "instant"})
	cand.await("ack", is("ack", "id", 1))
	var f store.Flag
	for range 100 {
		if e.db.Where("attempt_id = ?", e.cands[0].attempt).Take(&f).Error == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f.Severity != "critical" {
		t.Fatalf("paste flagged as %q under the exam's rules, want critical", f.Severity)
	}
}

func TestManualAdmission(t *testing.T) {
	e := newExamEnv(t, "sqlite", 2)
	e.db.Model(&store.ExamSession{}).Where("id = ?", e.session).Update("admission_mode", "manual")
	c0, c1 := e.connect(e.cands[0]), e.connect(e.cands[1])
	c0.send(map[string]any{"type": "start", "id": "s"})
	if m := c0.await("refused start", is("error", "id", "s")); m["code"] != "not_admitted" {
		t.Fatalf("start before admission: %v", m)
	}
	invA, invB := e.login(e.invA), e.login(e.invB)
	admit := fmt.Sprintf("/api/proctor/attempts/%d/admit", e.cands[0].attempt)
	if code, _ := call(t, e, invB, "POST", admit, map[string]bool{"force": true}); code != 403 {
		t.Fatalf("another invigilator admitted: %d", code)
	}
	if code, out := call(t, e, invA, "POST", admit, map[string]bool{}); code != 409 || !strings.Contains(string(out), "not_ready") {
		t.Fatalf("admitting with steps left: %d %s", code, out)
	}
	if code, out := call(t, e, invA, "POST", admit, map[string]bool{"force": true}); code != 200 {
		t.Fatalf("forced admission: %d %s", code, out)
	}
	c0.await("admission", is("admission", "state", "admitted"))
	if p := c0.start(); p["status"] != "in_progress" {
		t.Fatalf("start after admission: %v", p["status"])
	}
	refuse := fmt.Sprintf("/api/proctor/attempts/%d/refuse", e.cands[1].attempt)
	if code, _ := call(t, e, invA, "POST", refuse, map[string]string{"reason": " "}); code != 400 {
		t.Fatalf("refusal without a reason: %d", code)
	}
	if code, out := call(t, e, invA, "POST", refuse, map[string]string{"reason": "证件与本人不符"}); code != 200 {
		t.Fatalf("refuse: %d %s", code, out)
	}
	if m := c1.await("refusal", is("admission", "state", "refused")); m["reason"] != "证件与本人不符" {
		t.Fatalf("refusal push %v", m)
	}
	c1.send(map[string]any{"type": "start", "id": "s"})
	if m := c1.await("refused start", is("error", "id", "s")); m["code"] != "refused" || !strings.Contains(fmt.Sprint(m["detail"]), "证件与本人不符") {
		t.Fatalf("start after refusal: %v", m)
	}
	var actions []string
	e.db.Model(&store.AuditEvent{}).Where("actor_id = ? AND action LIKE ?", e.invA.id, "candidate_%").Order("id").Pluck("action", &actions)
	if strings.Join(actions, ",") != "candidate_admitted,candidate_refused" {
		t.Fatalf("audit %v", actions)
	}
}
