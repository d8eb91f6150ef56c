package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/examhall/examhall/proctor/review"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// Recordings are served with Range support to reviewers and admins, and to
// the candidate's own invigilator (or a chief) only while the exam is on;
// never to candidates, whose own recording it is.
func TestRecordingsRangeAndAuthorisation(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	e.connect(e.cands[0]).start()
	attempt := e.cands[0].attempt
	body := make([]byte, 100_000)
	rand.Read(body)
	path := filepath.Join(e.dataDir, "rec.webm")
	os.WriteFile(path, body, 0o600)
	start := time.Now().UTC().Add(-time.Minute)
	end := start.Add(40 * time.Second)
	rec := &store.Recording{AttemptID: attempt, Device: "pc", Connection: "c1", Path: path, Codecs: "vp8,opus", StartedAt: start, EndedAt: &end, SizeBytes: int64(len(body)), State: "closed"}
	e.db.Create(rec)
	clients := map[string]*http.Client{
		"admin": e.login(e.admin), "reviewer": e.login(e.reviewer), "invA": e.login(e.invA), "chief": e.login(e.chief),
		"invB": e.login(e.invB), "invD": e.login(e.invD), "candidate": e.login(e.cands[0]), "anonymous": {},
	}
	get := func(who, path, rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := clients[who].Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	file := fmt.Sprintf("/api/recordings/%d", rec.ID)
	list := fmt.Sprintf("/api/attempts/%d/recordings", attempt)
	during := map[string]int{"admin": 200, "reviewer": 200, "invA": 200, "chief": 200, "invB": 403, "invD": 403, "candidate": 403, "anonymous": 401}
	for who, want := range during {
		for _, p := range []string{file, list} {
			if resp, b := get(who, p, ""); resp.StatusCode != want {
				t.Errorf("during the exam, %s GET %s: %d, want %d (%.80s)", who, p, resp.StatusCode, want, b)
			}
		}
	}
	resp, b := get("reviewer", file, "bytes=100-199")
	if resp.StatusCode != 206 || !bytes.Equal(b, body[100:200]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-199/%d", len(body)) || resp.Header.Get("Content-Type") != "video/webm" {
		t.Fatalf("range: %d %q %q len %d", resp.StatusCode, resp.Header.Get("Content-Range"), resp.Header.Get("Content-Type"), len(b))
	}
	if resp, b := get("admin", file, ""); resp.StatusCode != 200 || !bytes.Equal(b, body) {
		t.Fatalf("whole file: %d %d bytes", resp.StatusCode, len(b))
	}
	_, b = get("reviewer", list, "")
	var tl review.Timeline
	json.Unmarshal(b, &tl)
	if len(tl.Segments) != 1 || tl.Duration != 40000 || tl.Segments[0].RecordingID != rec.ID {
		t.Fatalf("timeline %s", b)
	}
	var views int64
	e.db.Model(&store.AuditEvent{}).Where("action = ? AND object_id = ?", "recording_viewed", fmt.Sprint(rec.ID)).Count(&views)
	if views != 5 { // admin, reviewer, invA, chief during the exam and admin's whole file; the mid-file range is not a new viewing
		t.Errorf("%d viewings audited, want 5", views)
	}
	// After the exam only reviewers and admins.
	e.db.Model(&store.Attempt{}).Where("id = ?", attempt).Update("status", "submitted")
	for who, want := range map[string]int{"admin": 200, "reviewer": 200, "invA": 403, "chief": 403, "candidate": 403} {
		if resp, _ := get(who, file, "bytes=0-9"); resp.StatusCode != want && !(want == 200 && resp.StatusCode == 206) {
			t.Errorf("after the exam, %s: %d, want %d", who, resp.StatusCode, want)
		}
	}
	if resp, _ := get("admin", "/api/recordings/999999", ""); resp.StatusCode != 404 {
		t.Errorf("unknown recording: %d", resp.StatusCode)
	}
}

func TestIncidentReportAndDecision(t *testing.T) {
	for _, kind := range storetest.DBKinds() {
		t.Run(kind, func(t *testing.T) { testIncidentReport(t, kind) })
	}
}

func testIncidentReport(t *testing.T, kind string) {
	e := newExamEnv(t, kind, 1)
	cand := e.connect(e.cands[0])
	cand.start()
	cand.send(map[string]any{"type": "signal", "id": 1, "kind": "paste", "phase": "instant"})
	cand.await("ack", is("ack", "id", 1))
	attempt := e.cands[0].attempt
	rev := e.login(e.reviewer)
	path := fmt.Sprintf("/api/review/attempts/%d/decision", attempt)
	if code, out := call(t, e, rev, "POST", path, map[string]string{"decision": "valid"}); code != 409 || !bytes.Contains(out, []byte("not_ended")) {
		t.Fatalf("deciding a running attempt: %d %s", code, out)
	}
	cand.send(map[string]any{"type": "submit", "id": "s"})
	cand.await("ended", is("ended"))
	if code, out := call(t, e, rev, "POST", path, map[string]string{"decision": "invalid"}); code != 400 || !bytes.Contains(out, []byte("bad_decision")) {
		t.Fatalf("invalid without a reason: %d %s", code, out)
	}
	if code, out := call(t, e, e.login(e.invA), "POST", path, map[string]string{"decision": "valid"}); code != 403 {
		t.Fatalf("an invigilator decided: %d %s", code, out)
	}
	if code, out := call(t, e, rev, "POST", path, map[string]string{"decision": "invalid", "reason": "粘贴外部内容"}); code != 200 {
		t.Fatalf("decide: %d %s", code, out)
	}
	if a := e.attempt(attempt); a.Passed == nil || *a.Passed {
		t.Fatalf("an invalid attempt passes: %+v", a.Passed)
	}
	resp, err := rev.Get(e.srv.URL + fmt.Sprintf("/review/report?id=%d", attempt))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{e.cands[0].ticket, "尝试粘贴", "无效", "粘贴外部内容"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	var flagged int64
	e.db.Model(&store.Flag{}).Where("attempt_id = ?", attempt).Update("status", "confirmed").Count(&flagged)
	code, out := call(t, e, rev, "GET", fmt.Sprintf("/api/review/sessions/%d/report.csv", e.session), nil)
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(out, []byte("\uFEFF")))).ReadAll()
	if code != 200 || err != nil || len(rows) < 2 {
		t.Fatalf("csv: %d %v %s", code, err, out)
	}
	row := rows[1]
	if row[0] != e.cands[0].ticket || row[8] != fmt.Sprint(flagged) || row[9] != "invalid" || row[10] != "粘贴外部内容" || flagged == 0 {
		t.Fatalf("csv row %q, want the ticket, %d confirmed flags, invalid and the reason", row, flagged)
	}
	code, out = call(t, e, rev, "GET", fmt.Sprintf("/api/review/sessions/%d/attempts?filter=unreviewed", e.session), nil)
	if code != 200 || bytes.Contains(out, []byte(e.cands[0].ticket)) {
		t.Fatalf("a decided attempt listed as unreviewed: %s", out)
	}
}
