package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

func forEachDB(t *testing.T, candidates int, fn func(t *testing.T, e *examEnv)) {
	for _, kind := range storetest.DBKinds() {
		t.Run(kind, func(t *testing.T) { fn(t, newExamEnv(t, kind, candidates)) })
	}
}

func TestResumeStartAnswerAck(t *testing.T) {
	forEachDB(t, 1, func(t *testing.T, e *examEnv) {
		c := e.connect(e.cands[0])
		c.send(map[string]any{"type": "resume", "id": 1})
		r := c.await("paper", is("paper", "id", 1))
		if r["status"] != "not_started" || len(r["questions"].([]any)) != 0 {
			t.Fatalf("before start the paper is hidden: %v", r)
		}
		// Guessing question ids before the start tells nothing of the
		// paper: every id, on it or not, gets the same answer.
		var onPaper store.Attempt
		e.db.Take(&onPaper, e.cands[0].attempt)
		var drawn struct {
			Items []struct {
				QuestionID int64 `json:"q"`
			} `json:"items"`
		}
		json.Unmarshal([]byte(onPaper.Paper), &drawn)
		if len(drawn.Items) == 0 {
			t.Fatalf("cannot read the drawn paper: %.200s", onPaper.Paper)
		}
		for i, q := range []int64{drawn.Items[0].QuestionID, 999999} {
			c.send(map[string]any{"type": "answer", "seq": 100 + i, "question": q, "value": []int{0}})
			if m := c.await("refused", is("error", "seq", 100+i)); m["code"] != "not_started" {
				t.Fatalf("question %d before the start: %v", q, m)
			}
		}
		paper := c.start()
		qs := questions(paper)
		if paper["status"] != "in_progress" || len(qs) != 20 || paper["deadline"] == nil {
			t.Fatalf("started paper: status %v, %d questions", paper["status"], len(qs))
		}
		raw, _ := json.Marshal(paper)
		for _, leak := range []string{`"answer"`, `"explanation"`, `"key"`} {
			if strings.Contains(string(raw), leak) {
				t.Fatalf("paper leaks %s", leak)
			}
		}
		deadline, _ := time.Parse(time.RFC3339Nano, paper["deadline"].(string))
		serverNow, _ := time.Parse(time.RFC3339Nano, paper["server_now"].(string))
		if d := deadline.Sub(serverNow); d < 119*time.Minute || d > 120*time.Minute {
			t.Fatalf("deadline - server_now = %v, want 120 min", d)
		}

		q1 := int64(qs[0]["id"].(float64))
		q2 := int64(qs[1]["id"].(float64))
		c.send(map[string]any{"type": "answer", "seq": 1, "question": q1, "value": []int{2}})
		c.await("ack 1", is("ack", "seq", 1))
		// Resending is safe: acknowledged again, stored once.
		c.send(map[string]any{"type": "answer", "seq": 1, "question": q1, "value": []int{2}})
		c.await("ack 1 again", is("ack", "seq", 1))
		// Out of order: seq 3 arrives before seq 2; the higher one wins.
		c.send(map[string]any{"type": "answer", "seq": 3, "question": q2, "value": []int{1}})
		c.send(map[string]any{"type": "answer", "seq": 2, "question": q2, "value": []int{0}})
		c.await("ack 3", is("ack", "seq", 3))
		c.await("ack 2", is("ack", "seq", 2))
		c.send(map[string]any{"type": "mark", "seq": 4, "question": q2, "marked": true})
		c.await("ack 4", is("ack", "seq", 4))

		for _, bad := range []struct {
			msg  map[string]any
			code string
		}{
			{map[string]any{"type": "answer", "seq": 5, "question": q1, "value": []int{9}}, "bad_value"},
			{map[string]any{"type": "answer", "seq": 6, "question": q1, "value": []int{0, 1}}, "bad_value"},
			{map[string]any{"type": "answer", "seq": 7, "question": 999999, "value": []int{0}}, "unknown_question"},
			{map[string]any{"type": "answer", "seq": 0, "question": q1, "value": []int{0}}, "bad_seq"},
			{map[string]any{"type": "answer", "seq": 1, "question": q1, "value": []int{3}}, "bad_seq"}, // seq 1 reused for another value
			{map[string]any{"type": "answer", "seq": 8, "question": q1, "value": "x"}, "bad_value"},
		} {
			c.send(bad.msg)
			m := c.await("error "+bad.code, is("error", "seq", bad.msg["seq"]))
			if m["code"] != bad.code || m["message"].(map[string]any)["zh"] == "" {
				t.Errorf("%v: got %v, want %s", bad.msg, m, bad.code)
			}
		}

		ans := e.answers(e.cands[0].attempt)
		if ans[q1] != "[2]" || ans[q2] != "[1]" || len(ans) != 2 {
			t.Fatalf("stored answers %v", ans)
		}
		c.send(map[string]any{"type": "resume", "id": "again"})
		r = c.await("paper", is("paper", "id", "again"))
		if r["last_seq"].(float64) != 4 || len(r["answers"].([]any)) != 2 {
			t.Fatalf("resume after answers: last_seq %v, answers %v", r["last_seq"], r["answers"])
		}
		// The log holds start + 3 answers + 1 mark (+ connect), and replays to the table.
		rep, err := exam.Replay(e.events(e.cands[0].attempt))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(rep.Answers[q1].Value) != "[2]" || fmt.Sprint(rep.Answers[q2].Value) != "[1]" || !rep.Answers[q2].Marked {
			t.Fatalf("replay %+v", rep.Answers)
		}
	})
}

// Messages that carry a session description may be as large as a console's
// answer for a whole room; any other message is held to 16 KiB. A refused
// message is answered with too_large naming its type and limit, and the
// connection goes on.
func TestSocketLimitsBySize(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	c := e.connect(e.cands[0])
	c.start()
	// A session description of 400 KiB (about 130 candidates' worth of
	// media sections) reaches its handler, which finds it is no offer.
	big := `v=0\r\n` + strings.Repeat("a=x:"+strings.Repeat("y", 1000)+`\r\n`, 400)
	cases := []struct {
		name, raw, code string
		limit           float64
	}{
		{"the largest offer", `{"type":"media_offer","id":"o1","sdp":"` + big + `"}`, "bad_sdp", 0},
		{"an offer over its limit", `{"type":"media_offer","id":"o2","sdp":"` + big + strings.Repeat("z", 200<<10) + `"}`, "too_large", 512 << 10},
		{"an answer over 16 KiB", `{"type":"answer","id":"a1","seq":3,"question":1,"value":[0],"pad":"` + strings.Repeat("x", 20<<10) + `"}`, "too_large", 16 << 10},
		{"an answer of 2 MiB", `{"type":"answer","id":"a2","seq":4,"question":1,"value":[0],"pad":"` + strings.Repeat("x", 2<<20) + `"}`, "too_large", 16 << 10},
		{"a console answer on the exam socket", `{"type":"view_answer","id":"v1","sdp":"` + big + `"}`, "bad_request", 0},
	}
	for _, tc := range cases {
		if err := c.ws.WriteMessage(1, []byte(tc.raw)); err != nil {
			t.Fatal(err)
		}
		m := c.await("error", is("error"))
		if m["code"] != tc.code || (tc.limit != 0 && m["limit"] != tc.limit) {
			t.Errorf("%s: got %v, want %s", tc.name, m, tc.code)
		}
		if tc.code == "too_large" && (m["for"] == nil || m["detail"] == nil) {
			t.Errorf("%s: the refusal does not say which message: %v", tc.name, m)
		}
	}
	c.send(map[string]any{"type": "time", "id": "t"})
	c.await("time", is("time", "id", "t"))
}

func TestMalformedMessagesLeaveConnectionAndDataUnharmed(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	c := e.connect(e.cands[0])
	qs := questions(c.start())
	q := int64(qs[0]["id"].(float64))
	c.send(map[string]any{"type": "answer", "seq": 1, "question": q, "value": []int{1}})
	c.await("ack", is("ack", "seq", 1))

	cases := []struct {
		raw  string
		code string
	}{
		{`this is not json`, "bad_request"},
		{`{"no":"type"}`, "bad_request"},
		{`{"type":"launch_missiles","id":7}`, "unknown_type"},
		{`{"type":"answer","seq":"x"}`, "bad_request"},
		{`{"type":"answer","id":8,"seq":9,"question":1,"value":[0],"pad":"` + strings.Repeat("x", 100<<10) + `"}`, "too_large"},
		{`{"type":"answer","question":1,"value":[0]}`, "bad_value"},
	}
	for _, tc := range cases {
		if err := c.ws.WriteMessage(1, []byte(tc.raw)); err != nil {
			t.Fatal(err)
		}
		m := c.await("error", is("error"))
		if m["code"] != tc.code {
			t.Errorf("%.40s: got %v, want %s", tc.raw, m, tc.code)
		}
	}
	// Still alive, and the answer is intact.
	c.send(map[string]any{"type": "time", "id": "t"})
	if m := c.await("time", is("time", "id", "t")); m["server_now"] == nil || m["deadline"] == nil {
		t.Fatalf("time reply %v", m)
	}
	if got := e.answers(e.cands[0].attempt)[q]; got != "[1]" {
		t.Fatalf("answer changed to %s", got)
	}
}

func TestLateAnswersAreRefused(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	c := e.connect(e.cands[0])
	q := int64(questions(c.start())[0]["id"].(float64))
	// Within the grace after the deadline an in-flight answer is accepted ...
	a := e.attempt(e.cands[0].attempt)
	e.clock.add(a.Deadline.Sub(e.clock.now()) + 2*time.Second)
	c.send(map[string]any{"type": "answer", "seq": 1, "question": q, "value": []int{0}})
	c.await("ack in grace", is("ack", "seq", 1))
	// ... after it, refused with a clear error, and the attempt is auto-submitted.
	e.clock.add(10 * time.Second)
	c.send(map[string]any{"type": "answer", "seq": 2, "question": q, "value": []int{1}})
	m := c.await("late", is("error", "seq", 2))
	if m["code"] != "late_answer" && m["code"] != "attempt_ended" {
		t.Fatalf("late answer: %v", m)
	}
	c.await("ended", is("ended", "status", "auto_submitted"))
	if got := e.answers(e.cands[0].attempt)[q]; got != "[0]" {
		t.Fatalf("late answer changed the stored one: %s", got)
	}
}

func TestTakeoverTellsTheFirstConnectionWhy(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	sub, _ := e.bus.Subscribe(context.Background(), store.SignalTopic)
	defer sub.Close()
	first := e.connect(e.cands[0])
	first.start()
	second := e.connect(e.cands[0])
	m := first.await("closed", is("closed", "code", "takeover"))
	if !strings.Contains(m["message"].(map[string]any)["zh"].(string), "另一个窗口") {
		t.Fatalf("takeover message %v", m)
	}
	for seen := false; !seen; {
		select {
		case msg := <-sub.C:
			var s store.SignalMessage
			json.Unmarshal(msg.Data, &s)
			seen = s.Kind == "second_login" && s.AttemptID == e.cands[0].attempt && s.Phase == "instant"
		case <-time.After(3 * time.Second):
			t.Fatal("no second_login signal for the proctor")
		}
	}
	second.send(map[string]any{"type": "resume", "id": 1})
	second.await("paper on the new connection", is("paper", "id", 1))
	time.Sleep(50 * time.Millisecond)
	kinds := map[string]int{}
	for _, ev := range e.events(e.cands[0].attempt) {
		kinds[ev.Kind]++
	}
	if kinds["takeover"] != 1 || kinds["connect"] != 2 {
		t.Fatalf("log %v", kinds)
	}
}

func TestSubmitGradesAndEnds(t *testing.T) {
	forEachDB(t, 1, func(t *testing.T, e *examEnv) {
		c := e.connect(e.cands[0])
		qs := questions(c.start())
		// Answer every question correctly except the first.
		seq := 0
		for i, q := range qs {
			id := int64(q["id"].(float64))
			key := e.keys[id]
			if i == 0 {
				key = []int{(key[0] + 1) % 2}
			}
			seq++
			c.send(map[string]any{"type": "answer", "seq": seq, "question": id, "value": key})
		}
		for s := 1; s <= seq; s++ {
			c.await("ack", is("ack", "seq", s))
		}
		c.send(map[string]any{"type": "submit", "id": "sub"})
		c.await("ack submit", is("ack", "id", "sub"))
		ended := c.await("ended", is("ended", "status", "submitted"))
		a := e.attempt(e.cands[0].attempt)
		lost := qs[0]["points"].(float64)
		if a.Status != "submitted" || a.Score == nil || *a.Score != 100-lost || a.Passed == nil || !*a.Passed {
			t.Fatalf("graded attempt %+v score %v", a, a.Score)
		}
		if ended["reason"] == "" {
			t.Fatal("ended without a reason")
		}
		// A formal result is released after review, not to the page.
		if _, ok := ended["score"]; ok || ended["passed"] != nil {
			t.Fatalf("a formal attempt's end tells its result: %v", ended)
		}
		// After the end nothing changes.
		c.send(map[string]any{"type": "answer", "seq": seq + 1, "question": int64(qs[0]["id"].(float64)), "value": []int{0}})
		if m := c.await("refused", is("error", "seq", seq+1)); m["code"] != "attempt_ended" {
			t.Fatalf("answer after submit: %v", m)
		}
		c.send(map[string]any{"type": "submit", "id": "again"})
		if m := c.await("refused", is("error", "id", "again")); m["code"] != "attempt_ended" {
			t.Fatalf("second submit: %v", m)
		}
		rep, err := exam.Replay(e.events(a.ID))
		if err != nil || rep.Status != "submitted" {
			t.Fatalf("replay: %+v %v", rep, err)
		}
	})
}

func TestAutoSubmitWithoutClientAndAcrossRestart(t *testing.T) {
	forEachDB(t, 2, func(t *testing.T, e *examEnv) {
		for _, cd := range e.cands {
			c := e.connect(cd)
			q := int64(questions(c.start())[0]["id"].(float64))
			c.send(map[string]any{"type": "answer", "seq": 1, "question": q, "value": e.keys[q]})
			c.await("ack", is("ack", "seq", 1))
			c.ws.Close()
		}
		// Nobody connected: the deadline passes and the server submits.
		e.clock.add(121 * time.Minute)
		waitStatus(t, e, e.cands[0].attempt, "auto_submitted")
		a := e.attempt(e.cands[0].attempt)
		if a.Score == nil || *a.Score != 5 {
			t.Fatalf("auto-submitted score %v", a.Score)
		}
	})
	t.Run("restart", func(t *testing.T) {
		e := newExamEnv(t, "sqlite", 1)
		c := e.connect(e.cands[0])
		c.start()
		deadline := *e.attempt(e.cands[0].attempt).Deadline
		e.stop() // the server goes down ...
		e.clock.add(3 * time.Hour)
		if s := e.attempt(e.cands[0].attempt).Status; s != "in_progress" {
			t.Fatalf("status while down: %s", s)
		}
		e.startServer() // ... and on start submits what became overdue.
		waitStatus(t, e, e.cands[0].attempt, "auto_submitted")
		if !e.attempt(e.cands[0].attempt).Deadline.Equal(deadline) {
			t.Fatal("the deadline moved across the restart")
		}
	})
}

func waitStatus(t *testing.T, e *examEnv, id int64, status string) {
	t.Helper()
	for range 200 {
		if e.attempt(id).Status == status {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("attempt %d status %s, want %s", id, e.attempt(id).Status, status)
}

func TestOutageIsCreditedUpToTheCap(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	hc := e.login(e.cands[0])
	c, _, _ := e.dial(hc, e.cands[0].attempt)
	c.start()
	before := *e.attempt(e.cands[0].attempt).Deadline
	c.ws.Close()
	time.Sleep(50 * time.Millisecond) // let the server see the disconnect
	e.clock.add(90 * time.Second)
	c, _, _ = e.dial(hc, e.cands[0].attempt)
	c.send(map[string]any{"type": "time", "id": 1})
	c.await("time after credit", is("time", "id", 1))
	after := *e.attempt(e.cands[0].attempt).Deadline
	if got := after.Sub(before); got != 90*time.Second {
		t.Fatalf("credited %v, want 90s", got)
	}
	c.ws.Close()
	time.Sleep(50 * time.Millisecond)
	e.clock.add(10 * time.Minute)
	c, _, _ = e.dial(hc, e.cands[0].attempt)
	c.send(map[string]any{"type": "time", "id": 2})
	c.await("time after credit", is("time", "id", 2))
	a := e.attempt(e.cands[0].attempt)
	if a.CreditedSeconds != 300 || a.Deadline.Sub(before) != 5*time.Minute {
		t.Fatalf("credited %d s in total, deadline +%v; want the 5-minute cap", a.CreditedSeconds, a.Deadline.Sub(before))
	}
	n := 0
	for _, ev := range e.events(a.ID) {
		if ev.Kind == "credit" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d credit events, want 2", n)
	}
}

func TestSocketAuthorisation(t *testing.T) {
	e := newExamEnv(t, "sqlite", 2)
	mine := e.login(e.cands[0])
	for _, tc := range []struct {
		name    string
		client  *http.Client
		attempt string
		status  int
	}{
		{"someone else's attempt", mine, fmt.Sprint(e.cands[1].attempt), 404},
		{"no such attempt", mine, "999999", 404},
		{"garbage attempt", mine, "x';--", 404},
		{"not logged in", &http.Client{}, fmt.Sprint(e.cands[0].attempt), 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws/exam?attempt=" + tc.attempt
			d := wsDialer(tc.client)
			_, resp, err := d.Dial(u, nil)
			if err == nil || resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("dial: %v, %v; want %d", err, resp, tc.status)
			}
		})
	}
	// A page of another site may not open the socket, even with the cookie.
	u := "ws" + strings.TrimPrefix(e.srv.URL, "http") + fmt.Sprintf("/ws/exam?attempt=%d", e.cands[0].attempt)
	_, resp, err := wsDialer(mine).Dial(u, http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp.StatusCode != 403 {
		t.Fatalf("cross-origin socket: %v %v", err, resp)
	}
}

// Mock tests draw only from the practice pool and formal exams only from
// the formal one, so no formal question is seen before the exam; mocks are
// uncounted, at most 5 in 24 hours, and none while the formal attempt runs.
func TestMockDrawsOnlyPracticeAndIsLimited(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	hc := e.login(e.cands[0])
	mock := func() (int, int64) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/mock", nil)
		req.Header.Set("X-CSRF-Token", csrf(t, hc, e.srv.URL))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			AttemptID int64 `json:"attempt_id"`
		}
		json.NewDecoder(resp.Body).Decode(&r)
		return resp.StatusCode, r.AttemptID
	}
	pools := func(p map[string]any) map[string]int {
		n := map[string]int{}
		for _, q := range questions(p) {
			n[strings.Fields(q["stem"].(string))[0]]++
		}
		return n
	}
	var ids []int64
	for i := range exam.MocksPerDay {
		code, id := mock()
		if code != 201 {
			t.Fatalf("mock %d: %d", i+1, code)
		}
		ids = append(ids, id)
	}
	if code, _ := mock(); code != 429 {
		t.Fatalf("mock %d in a day: %d, want 429 mock_limit", exam.MocksPerDay+1, code)
	}
	c, _, err := e.dial(hc, ids[1])
	if err != nil {
		t.Fatal(err)
	}
	p := c.start()
	if got := pools(p); p["kind"] != "mock" || got[exam.PoolPractice] != 20 || got[exam.PoolFormal] != 0 {
		t.Fatalf("mock paper %v: %v", p["kind"], got)
	}
	c.ws.Close()
	resp, _ := hc.Get(e.srv.URL + "/api/attempts")
	var list struct{ Attempts []exam.AttemptSummary }
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Attempts) != exam.MocksPerDay+1 || list.Attempts[0].Kind != "formal" {
		t.Fatalf("attempts %+v", list.Attempts)
	}
	var formal store.Attempt
	e.db.Take(&formal, e.cands[0].attempt)
	if formal.Status != "not_started" {
		t.Fatal("a mock attempt touched the formal one")
	}
	// The formal paper is all formal; while it runs, no mock starts.
	f := e.connect(e.cands[0])
	if got := pools(f.start()); got[exam.PoolFormal] != 20 || got[exam.PoolPractice] != 0 {
		t.Fatalf("formal paper: %v", got)
	}
	// Judged before the daily limit; no clock jump here, since one past
	// the formal deadline lets the sweeper end it first (a race).
	if code, _ := mock(); code != 409 {
		t.Fatalf("a mock while the formal exam runs: %d, want 409 formal_running", code)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	forEachDB(t, 1, func(t *testing.T, e *examEnv) {
		c := e.connect(e.cands[0])
		qs := questions(c.start())
		for i, q := range qs[:5] {
			id := int64(q["id"].(float64))
			c.send(map[string]any{"type": "answer", "seq": i + 1, "question": id, "value": e.keys[id]})
			c.await("ack", is("ack", "seq", i+1))
		}
		c.send(map[string]any{"type": "submit", "id": 1})
		c.await("ended", is("ended"))
		ctx := context.Background()
		id := e.cands[0].attempt
		r, err := e.engine.Verify(ctx, id)
		if err != nil || !r.OK() || r.Score == nil || *r.Score != r.Replayed || r.Replayed == 0 {
			t.Fatalf("clean attempt: %+v %v", r, err)
		}
		// Someone edits an answer in the table: the replay disagrees.
		q := int64(qs[0]["id"].(float64))
		other := fmt.Sprintf("[%d]", (e.keys[q][0]+1)%2)
		e.db.Model(&store.Answer{}).Where("attempt_id = ? AND question_id = ?", id, q).Update("value", other)
		if r, _ := e.engine.Verify(ctx, id); r.OK() {
			t.Fatal("an edited answer verified")
		}
		e.db.Model(&store.Answer{}).Where("attempt_id = ? AND question_id = ?", id, q).Update("value", fmt.Sprint(e.keys[q]))
		// Someone edits the log itself: the chain breaks.
		e.db.Model(&store.AttemptEvent{}).Where("attempt_id = ? AND kind = ?", id, "answer").Limit(1).
			Update("data", fmt.Sprintf(`{"q":%d,"v":%s}`, q, other))
		if r, _ := e.engine.Verify(ctx, id); r.OK() || !strings.Contains(strings.Join(r.Problems, " "), "hash") {
			t.Fatalf("an edited log verified: %+v", r)
		}
	})
}

// Every goroutine a connection starts (reader, writer, clock) ends with it.
func TestSocketGoroutinesEndWithTheirConnections(t *testing.T) {
	e := newExamEnv(t, "sqlite", 3)
	clients := make([]*http.Client, len(e.cands))
	for i, cd := range e.cands {
		clients[i] = e.login(cd)
	}
	time.Sleep(100 * time.Millisecond)
	before := goleak.IgnoreCurrent()
	for round := range 2 {
		for i, cd := range e.cands {
			c, _, err := e.dial(clients[i], cd.attempt)
			if err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				c.start()
			}
			c.send(map[string]any{"type": "time", "id": 1})
			c.await("time", is("time", "id", 1))
			c.ws.Close()
		}
	}
	e.srv.CloseClientConnections()
	if err := goleak.Find(before, goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop")); err != nil {
		t.Fatal(err)
	}
}

// Logging out ends the sockets opened with that login, with a reason the
// page shows; a new login opens them again.
func TestLogoutClosesTheSockets(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	hc := e.login(e.cands[0])
	c, _, err := e.dial(hc, e.cands[0].attempt)
	if err != nil {
		t.Fatal(err)
	}
	e.logout(hc)
	if m := c.await("closed", is("closed")); m["code"] != "session_expired" {
		t.Fatalf("closed %v", m)
	}
	if _, resp, err := e.dial(hc, e.cands[0].attempt); err == nil || resp.StatusCode != 401 {
		t.Fatalf("a socket after logout: %v %v", err, resp)
	}
}

// A candidate whose network drops silently for 60 s and who reconnects from
// the same page before the server noticed the old socket die is not taken
// for a second login: the old socket is replaced quietly and the outage is
// credited from the last thing the page said.
func TestSilentDropAndReconnectFromTheSamePage(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	cd := e.cands[0]
	sub, _ := e.bus.Subscribe(context.Background(), store.SignalTopic)
	defer sub.Close()
	hc := e.login(cd)
	url := fmt.Sprintf("/ws/exam?attempt=%d&page=%s", cd.attempt, "0123456789abcdef0123456789abcdef")
	first, _, err := e.open(hc, url)
	if err != nil {
		t.Fatal(err)
	}
	qs := questions(first.start())
	before := *e.attempt(cd.attempt).Deadline
	first.send(map[string]any{"type": "answer", "seq": 1, "question": int64(qs[0]["id"].(float64)), "value": []int{0}})
	first.await("ack", is("ack", "seq", 1))
	// The network goes: the page says nothing more, not even a pong.
	first.ws.SetPingHandler(func(string) error { return nil })
	e.clock.add(60 * time.Second)
	second, _, err := e.open(hc, url)
	if err != nil {
		t.Fatal(err)
	}
	if m := first.await("closed", is("closed")); m["code"] != "replaced" {
		t.Fatalf("the old socket: %v", m)
	}
	second.send(map[string]any{"type": "time", "id": "t"})
	second.await("time", is("time", "id", "t"))
	got := e.attempt(cd.attempt).Deadline.Sub(before)
	if got < 57*time.Second || got > 63*time.Second {
		t.Fatalf("credited %v for a 60 s outage", got)
	}
	for {
		select {
		case msg := <-sub.C:
			var s store.SignalMessage
			json.Unmarshal(msg.Data, &s)
			if s.Kind == "second_login" {
				t.Fatalf("a reconnect from the same page was taken for a second login: %+v", s)
			}
		case <-time.After(500 * time.Millisecond):
			return
		}
	}
}

// A logout on one node closes the sockets opened with that login on every
// node: the bus carries it.
func TestLogoutClosesSocketsOnOtherNodes(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	other := e.secondNode()
	hc := e.login(e.cands[0])
	c, _, err := other.dial(hc, e.cands[0].attempt)
	if err != nil {
		t.Fatal(err)
	}
	c.start() // on e, the room's owner, where other sent it
	other.logout(hc)
	if m := c.await("closed on the other node", is("closed")); m["code"] != "session_expired" {
		t.Fatalf("closed %v", m)
	}
}

// logout logs hc's user out through the API.
func (e *examEnv) logout(hc *http.Client) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/logout", nil)
	req.Header.Set("X-CSRF-Token", csrf(e.t, hc, e.srv.URL))
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode >= 300 {
		e.t.Fatalf("logout: %v %v", resp, err)
	}
	resp.Body.Close()
}
