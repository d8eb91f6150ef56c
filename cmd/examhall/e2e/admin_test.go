package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

// call makes an API request with the client's CSRF token.
func call(t *testing.T, e *examEnv, hc *http.Client, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if hc.Jar != nil {
		req.Header.Set("X-CSRF-Token", csrf(t, hc, e.srv.URL))
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func TestAdminAPIAuthorisation(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	cand := e.login(e.cands[0])
	for _, path := range []string{"/api/admin/programmes", "/api/admin/exams", "/api/admin/sessions",
		fmt.Sprintf("/api/admin/sessions/%d/results", e.session), "/api/admin/programmes/1/questions?format=csv"} {
		if code, _ := call(t, e, cand, "GET", path, nil); code != 403 {
			t.Errorf("candidate GET %s: %d, want 403", path, code)
		}
		if code, _ := call(t, e, &http.Client{}, "GET", path, nil); code != 401 {
			t.Errorf("anonymous GET %s: %d, want 401", path, code)
		}
	}
	if code, _ := call(t, e, cand, "PUT", "/api/admin/questions/1/key", map[string]any{"answer": []int{0}, "reason": "x"}); code != 403 {
		t.Errorf("candidate key correction: %d", code)
	}
	var q store.Question
	e.db.Take(&q, 1)
	if q.Answer != fmt.Sprint("[", e.keys[1][0], "]") {
		t.Fatalf("a refused correction changed the key: %s", q.Answer)
	}
}

func TestBankExportImportRoundTripAndRejectsBadLines(t *testing.T) {
	forEachDB(t, 0, func(t *testing.T, e *examEnv) {
		admin := e.login(e.admin)
		code, csvBody := call(t, e, admin, "GET", "/api/admin/programmes/1/questions?format=csv", nil)
		if code != 200 || !strings.Contains(string(csvBody), "kind,stem,A,B") {
			t.Fatalf("export csv: %d %.80s", code, csvBody)
		}
		code, jsonBody := call(t, e, admin, "GET", "/api/admin/programmes/1/questions?format=json", nil)
		if code != 200 {
			t.Fatalf("export json: %d", code)
		}
		p2 := &store.Programme{Code: "p2", NameZh: "二", NameEn: "Two", Rules: "{}"}
		e.db.Create(p2)
		for _, f := range []struct {
			format string
			body   []byte
		}{{"csv", csvBody}, {"json", jsonBody}} {
			code, out := call(t, e, admin, "POST", fmt.Sprintf("/api/admin/programmes/%d/questions?format=%s", p2.ID, f.format), f.body)
			if code != 201 || !strings.Contains(string(out), `"imported":44`) {
				t.Fatalf("import %s: %d %s", f.format, code, out)
			}
		}
		a, _ := e.engine.Bank(t.Context(), 1)
		b, _ := e.engine.Bank(t.Context(), p2.ID)
		if len(b) != 2*len(a) {
			t.Fatalf("imported %d, want %d", len(b), 2*len(a))
		}
		// Each import is audited as the admin's, with the count.
		var imports []store.AuditEvent
		e.db.Where("action = 'questions_imported' AND object_id = ?", itoa(p2.ID)).Find(&imports)
		if len(imports) != 2 || *imports[0].ActorID != e.admin.id || imports[0].Detail != `{"count":44}` || imports[0].IP != "127.0.0.1" {
			t.Fatalf("import audits %+v", imports)
		}
		// The pools survive the round trip.
		if !strings.Contains(string(csvBody), ",practice\n") || !strings.Contains(strings.ReplaceAll(string(jsonBody), " ", ""), `"pool":"practice"`) {
			t.Fatal("the export does not say which questions are practice")
		}
		for i := range a {
			x, y, z := exam.FromRow(a[i]), exam.FromRow(b[i]), exam.FromRow(b[i+len(a)])
			if fmt.Sprint(x) != fmt.Sprint(y) || fmt.Sprint(x) != fmt.Sprint(z) {
				t.Fatalf("round trip changed question %d:\n%v\n%v\n%v", i, x, y, z)
			}
		}

		bad := "kind,stem,A,B,C,D,E,F,G,H,answer,tags,difficulty,partial_credit,explanation\n" +
			"single,好题,甲,乙,,,,,,,A,t,1,false,\n" +
			"single,坏题,甲,乙,,,,,,,Z,t,1,false,\n" +
			"essay,坏题,甲,乙,,,,,,,A,t,9,maybe,\n"
		code, out := call(t, e, admin, "POST", fmt.Sprintf("/api/admin/programmes/%d/questions?format=csv", p2.ID), []byte(bad))
		var reply struct {
			Error struct{ Code string }
			Lines []exam.LineError
		}
		json.Unmarshal(out, &reply)
		if code != 400 || reply.Error.Code != "invalid_import" || len(reply.Lines) < 3 || reply.Lines[0].Line != 3 || reply.Lines[len(reply.Lines)-1].Line != 4 {
			t.Fatalf("bad import: %d %s", code, out)
		}
		if c, _ := e.engine.Bank(t.Context(), p2.ID); len(c) != len(b) {
			t.Fatalf("a refused import added %d questions", len(c)-len(b))
		}
	})
}

func TestKeyCorrectionRegradesAndAudits(t *testing.T) {
	forEachDB(t, 1, func(t *testing.T, e *examEnv) {
		c := e.connect(e.cands[0])
		qs := questions(c.start())
		// Answer every question with the key.
		for i, q := range qs {
			id := int64(q["id"].(float64))
			c.send(map[string]any{"type": "answer", "seq": i + 1, "question": id, "value": e.keys[id]})
			c.await("ack", is("ack", "seq", i+1))
		}
		c.send(map[string]any{"type": "submit", "id": 1})
		c.await("ended", is("ended"))
		a := e.attempt(e.cands[0].attempt)
		if *a.Score != 100 {
			t.Fatalf("score %v, want 100", *a.Score)
		}
		// The first single-choice question's key was wrong: correct it.
		var target map[string]any
		for _, q := range qs {
			if q["kind"] == "single" {
				target = q
				break
			}
		}
		qid := int64(target["id"].(float64))
		newKey := []int{(e.keys[qid][0] + 1) % 4}
		admin := e.login(e.admin)
		if code, out := call(t, e, admin, "PUT", fmt.Sprintf("/api/admin/questions/%d/key", qid), map[string]any{"answer": newKey}); code != 400 {
			t.Fatalf("correction without a reason: %d %s", code, out)
		}
		code, out := call(t, e, admin, "PUT", fmt.Sprintf("/api/admin/questions/%d/key", qid), map[string]any{"answer": newKey, "reason": "教材第 3 章已更新"})
		var rep exam.RegradeReport
		json.Unmarshal(out, &rep)
		if code != 200 || rep.Attempts != 1 || rep.Changed != 1 {
			t.Fatalf("correction: %d %s", code, out)
		}
		a = e.attempt(a.ID)
		if want := 100 - target["points"].(float64); *a.Score != want {
			t.Fatalf("regraded score %v, want %v", *a.Score, want)
		}
		var audits []store.AuditEvent
		e.db.Where("action IN ?", []string{"key_corrected", "regraded"}).Find(&audits)
		if len(audits) != 2 || !strings.Contains(audits[1].Detail, "教材第 3 章已更新") || *audits[0].ActorID != e.admin.id {
			t.Fatalf("audit %+v", audits)
		}
		if r, err := e.engine.Verify(t.Context(), a.ID); err != nil || !r.OK() {
			t.Fatalf("verify after regrade: %+v %v", r, err)
		}

		// Results and statistics, as JSON and CSV.
		code, out = call(t, e, admin, "GET", fmt.Sprintf("/api/admin/sessions/%d/results?format=csv", e.session), nil)
		if code != 200 || !strings.Contains(string(out), e.cands[0].ticket) || !strings.Contains(string(out), fmt.Sprint(*a.Score)) {
			t.Fatalf("results csv: %d %s", code, out)
		}
		code, out = call(t, e, admin, "GET", fmt.Sprintf("/api/admin/sessions/%d/stats", e.session), nil)
		var stats struct{ Questions []exam.QuestionStat }
		json.Unmarshal(out, &stats)
		if code != 200 || len(stats.Questions) != 20 {
			t.Fatalf("stats: %d %s", code, out)
		}
		for _, s := range stats.Questions {
			want := 1.0
			if s.QuestionID == qid {
				want = 0
			}
			if s.OnPapers != 1 || s.Answered != 1 || s.Facility != want {
				t.Errorf("question %d stats %+v, want facility %v", s.QuestionID, s, want)
			}
		}
	})
}

func TestAdminExamAndSessionValidation(t *testing.T) {
	e := newExamEnv(t, "sqlite", 0)
	admin := e.login(e.admin)
	path := fmt.Sprintf("/api/admin/exams/%d", e.exam.ID)
	for _, tc := range []struct {
		name string
		body string
		code int
		want string
	}{
		{"points not 100", `{"blueprint":{"sections":[{"kind":"single","count":10,"points":5}]},"policy":{}}`, 400, "bad_blueprint"},
		{"more than the bank", `{"blueprint":{"sections":[{"kind":"single","count":20,"points":5}]},"policy":{}}`, 400, "bad_blueprint"},
		{"bad policy", `{"blueprint":{"sections":[{"kind":"single","count":10,"points":10}]},"policy":{"grace_seconds":-1}}`, 400, "bad_value"},
		{"unknown field", `{"blueprint":{},"nonsense":1}`, 400, "bad_request"},
		{"good", `{"blueprint":{"sections":[{"kind":"single","count":10,"points":10}]},"policy":{"outage_credit_cap_seconds":0}}`, 200, "ok"},
	} {
		code, out := call(t, e, admin, "PUT", path, []byte(tc.body))
		if code != tc.code || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: %d %s", tc.name, code, out)
		}
	}
	var ex store.Exam
	e.db.Take(&ex, e.exam.ID)
	if !strings.Contains(ex.Blueprint, `"count":10,"points":10`) || !strings.Contains(ex.Policy, `"outage_credit_cap_seconds":0`) {
		t.Fatalf("exam not updated: %s %s", ex.Blueprint, ex.Policy)
	}
	code, out := call(t, e, admin, "POST", "/api/admin/sessions", map[string]any{"exam_id": e.exam.ID, "code": "s2", "title": "第二场",
		"starts_at": "2026-12-01T09:00:00Z", "admission_ends_at": "2026-12-01T08:00:00Z", "ends_at": "2026-12-01T12:00:00Z"})
	if code != 400 || !strings.Contains(string(out), "bad_session") {
		t.Fatalf("session with admission before start: %d %s", code, out)
	}
	code, out = call(t, e, admin, "POST", "/api/admin/sessions", map[string]any{"exam_id": e.exam.ID, "code": "s2", "title": "第二场",
		"starts_at": "2026-12-01T09:00:00Z", "admission_ends_at": "2026-12-01T09:30:00Z", "ends_at": "2026-12-01T12:00:00Z"})
	if code != 201 {
		t.Fatalf("create session: %d %s", code, out)
	}
	code, out = call(t, e, admin, "GET", "/api/admin/sessions", nil)
	if code != 200 || !strings.Contains(string(out), "第二场") {
		t.Fatalf("sessions: %d %s", code, out)
	}
}

// An admin changes how a session admits its candidates; the change is
// checked, audited and takes effect at the next start.
func TestAdmissionModeChange(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	path := fmt.Sprintf("/api/admin/sessions/%d/admission", e.session)
	admin := e.login(e.admin)
	if code, _ := call(t, e, e.login(e.invA), "PUT", path, map[string]string{"mode": "manual"}); code != 403 {
		t.Fatalf("an invigilator changed the mode: %d", code)
	}
	if code, out := call(t, e, admin, "PUT", path, map[string]string{"mode": "lax"}); code != 400 || !strings.Contains(string(out), "bad_session") {
		t.Fatalf("unknown mode: %d %s", code, out)
	}
	if code, out := call(t, e, admin, "PUT", path, map[string]string{"mode": "manual"}); code != 200 {
		t.Fatalf("manual: %d %s", code, out)
	}
	if code, out := call(t, e, admin, "GET", "/api/admin/sessions", nil); code != 200 || !strings.Contains(string(out), `"admission_mode":"manual"`) {
		t.Fatalf("sessions list: %d %s", code, out)
	}
	c := e.connect(e.cands[0])
	c.send(map[string]any{"type": "start", "id": "s"})
	if m := c.await("refused start", is("error", "id", "s")); m["code"] != "not_admitted" {
		t.Fatalf("start under manual admission: %v", m)
	}
	var n int64
	e.db.Model(&store.AuditEvent{}).Where("action = ? AND detail LIKE ?", "admission_mode_changed", `%"to":"manual"%`).Count(&n)
	if n != 1 {
		t.Fatalf("%d audit rows", n)
	}
}

// An admin moves a question between pools, audited; a formal question on a
// paper still to be taken stays formal, a practice one a mock has shown
// never becomes formal, and a pool must be formal or practice.
func TestQuestionPools(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	admin := e.login(e.admin)
	var a store.Attempt
	e.db.Take(&a, e.cands[0].attempt)
	var paper struct {
		Items []struct {
			Q int64 `json:"q"`
		} `json:"items"`
	}
	json.Unmarshal([]byte(a.Paper), &paper)
	onPaper := paper.Items[0].Q
	var spare store.Question
	if err := e.db.Where("pool = ? AND id NOT IN ?", exam.PoolFormal, func() []int64 {
		ids := []int64{}
		for _, it := range paper.Items {
			ids = append(ids, it.Q)
		}
		return ids
	}()).Take(&spare).Error; err != nil {
		t.Fatal(err)
	}
	put := func(id int64, pool string) (int, []byte) {
		return call(t, e, admin, "PUT", fmt.Sprintf("/api/admin/questions/%d/pool", id), map[string]string{"pool": pool})
	}
	code, b := put(onPaper, exam.PoolPractice)
	expect(t, "a question on a formal paper still to come", code, b, 409, "pool_in_use")
	code, b = put(spare.ID, "secret")
	expect(t, "an unknown pool", code, b, 400, "bad_pool")
	code, b = put(spare.ID, exam.PoolPractice)
	expect(t, "a spare formal question to practice", code, b, 200, "")
	if e.db.Take(&spare, spare.ID); spare.Pool != exam.PoolPractice {
		t.Fatalf("pool %q", spare.Pool)
	}
	// A mock shows practice questions: those can never become formal.
	cand := e.login(e.cands[0])
	code, b = call(t, e, cand, "POST", "/api/mock", nil)
	if code != 201 {
		t.Fatalf("mock: %d %s", code, b)
	}
	var mock store.Attempt
	e.db.Where("kind = ?", "mock").Take(&mock)
	json.Unmarshal([]byte(mock.Paper), &paper)
	code, b = put(paper.Items[0].Q, exam.PoolFormal)
	expect(t, "a practice question a mock has shown", code, b, 409, "pool_in_use")
	var n int64
	e.db.Model(&store.AuditEvent{}).Where("action = ?", "question_pool_changed").Count(&n)
	if n != 1 {
		t.Fatalf("%d audit events", n)
	}
	code, b = put(spare.ID, exam.PoolPractice)
	expect(t, "for a candidate", code, b, 200, "")
	if code, _ := call(t, e, cand, "PUT", fmt.Sprintf("/api/admin/questions/%d/pool", spare.ID), map[string]string{"pool": "formal"}); code != 403 {
		t.Fatalf("a candidate moved a question: %d", code)
	}
}

// Each session shows the most its recordings take: every seat's two
// cameras at the exam's caps and the microphone, for the exam's length.
func TestSessionStorageEstimate(t *testing.T) {
	e := newExamEnv(t, "sqlite", 3)
	admin := e.login(e.admin)
	estimate := func() int64 {
		code, out := call(t, e, admin, "GET", "/api/admin/sessions", nil)
		var r struct {
			Sessions []struct {
				ID      int64 `json:"id"`
				Seats   int   `json:"seats"`
				Storage int64 `json:"storage_estimate_bytes"`
			}
		}
		if err := json.Unmarshal(out, &r); err != nil || code != 200 || len(r.Sessions) != 1 || r.Sessions[0].Seats != 3 {
			t.Fatalf("sessions: %d %s", code, out)
		}
		return r.Sessions[0].Storage
	}
	// 3 seats × (300 + 200 + 32) kbit/s × 120 min.
	if got, want := estimate(), int64(3*(300+200+32)*1000/8*120*60); got != want {
		t.Fatalf("estimate %d bytes, want %d", got, want)
	}
	code, out := call(t, e, admin, "PUT", fmt.Sprintf("/api/admin/exams/%d", e.exam.ID), map[string]any{
		"blueprint": json.RawMessage(e.exam.Blueprint), "policy": map[string]any{"pc_max_kbps": 600, "phone_max_kbps": 100}})
	if code != 200 && code != 204 {
		t.Fatalf("policy with caps: %d %s", code, out)
	}
	if got, want := estimate(), int64(3*(600+100+32)*1000/8*120*60); got != want {
		t.Fatalf("estimate after the caps changed %d bytes, want %d", got, want)
	}
	if code, _ := call(t, e, admin, "PUT", fmt.Sprintf("/api/admin/exams/%d", e.exam.ID), map[string]any{
		"blueprint": json.RawMessage(e.exam.Blueprint), "policy": map[string]any{"pc_max_kbps": 5000}}); code != 400 {
		t.Fatalf("a cap of 5000 kbit/s: %d, want 400", code)
	}
}

// Changes of a room's invigilators, of who is responsible for a candidate
// and the drawing of a session's papers are audited where they are
// decided, with the admin who made them and the address they came from, in
// the same transaction as the change.
func TestRoomAndScheduleChangesAreAudited(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	var before int64 // the set-up's own drawing is the system's
	e.db.Model(&store.AuditEvent{}).Select("COALESCE(MAX(id), 0)").Scan(&before)
	admin := e.login(e.admin)
	room := fmt.Sprintf("/api/admin/rooms/%d/invigilators", e.room)
	if code, out := call(t, e, admin, "POST", room, map[string]any{"user_id": e.invD.id}); code != 200 && code != 204 {
		t.Fatalf("add an invigilator: %d %s", code, out)
	}
	if code, out := call(t, e, admin, "DELETE", fmt.Sprintf("%s/%d", room, e.invD.id), nil); code != 200 {
		t.Fatalf("remove the invigilator: %d %s", code, out)
	}
	if code, out := call(t, e, admin, "POST", "/api/admin/rooms/999999/invigilators", map[string]any{"user_id": e.cands[0].id}); code < 400 {
		t.Fatalf("a candidate as invigilator: %d %s", code, out)
	}
	var first store.Seat
	e.db.Where("candidate_id = ?", e.cands[0].id).Take(&first)
	if code, out := call(t, e, admin, "PUT", fmt.Sprintf("/api/admin/seats/%d/invigilator", first.ID), map[string]any{"user_id": e.invB.id}); code != 200 && code != 204 {
		t.Fatalf("assign a candidate: %d %s", code, out)
	}
	if code, out := call(t, e, admin, "POST", fmt.Sprintf("/api/admin/rooms/%d/balance", e.room), nil); code != 200 {
		t.Fatalf("balance the room: %d %s", code, out)
	}
	seat := &store.Seat{SessionID: e.session, RoomID: e.room, CandidateID: e.invD.id, Ticket: "T-extra"}
	if err := e.db.Create(seat).Error; err != nil {
		t.Fatal(err)
	}
	if code, out := call(t, e, admin, "POST", fmt.Sprintf("/api/admin/sessions/%d/schedule", e.session), nil); code != 200 {
		t.Fatalf("schedule: %d %s", code, out)
	}
	var got []store.AuditEvent
	e.db.Where("id > ? AND action IN ?", before, []string{"invigilator_added", "invigilator_removed", "candidate_assigned", "room_balanced", "session_scheduled"}).Order("id").Find(&got)
	var seen []string
	for _, a := range got {
		if a.ActorID == nil || *a.ActorID != e.admin.id {
			t.Errorf("%s by %v, want the admin", a.Action, a.ActorID)
		}
		if a.IP != "127.0.0.1" {
			t.Errorf("%s from %q, want the admin's 127.0.0.1", a.Action, a.IP)
		}
		seen = append(seen, a.Action+" "+a.Detail)
	}
	want := fmt.Sprintf(`[invigilator_added {"user_id":%d} invigilator_removed {"user_id":%d} candidate_assigned {"user_id":%d} room_balanced {"candidates":1} session_scheduled {"papers":1}]`,
		e.invD.id, e.invD.id, e.invB.id)
	if fmt.Sprint(seen) != want {
		t.Fatalf("audit %v, want %s", seen, want)
	}
}
