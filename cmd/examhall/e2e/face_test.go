package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

// waitFlag waits for an attempt's flag of a kind.
func (e *examEnv) waitFlag(attempt int64, kind string) store.Flag {
	e.t.Helper()
	var f store.Flag
	for range 300 {
		if e.db.Where("attempt_id = ? AND kind = ?", attempt, kind).Take(&f).Error == nil {
			return f
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no %s flag", kind)
	return f
}

// TestFaceSignalsWithStills follows the server's face check into the
// proctor: a lasting "no face" is flagged with its still as evidence, the
// page saying nothing of it for long is itself flagged as a disagreement,
// the page can add its own stills, and the stills reach only staff who may
// watch the candidate.
func TestFaceSignalsWithStills(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	ctx := context.Background()
	admin := e.login(e.admin)
	rules := `{"face_absent":{"threshold":"200ms"},"face_checks_disagree":{"threshold":"300ms"}}`
	if code, out := call(t, e, admin, "PUT", fmt.Sprintf("/api/admin/exams/%d/proctor-rules", e.exam.ID), []byte(rules)); code != 200 {
		t.Fatalf("rules: %d %s", code, out)
	}
	c := e.cands[0]
	cand := e.connect(c)
	cand.start()

	// The page's analysis runs; the server sees no face, the page does.
	still := "1764230000000-pc-face_absent.jpg"
	jpg, err := os.ReadFile("../../../media/vision/testdata/face-none.jpg")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(e.dataDir, "stills", itoa(c.attempt)), 0o750)
	os.WriteFile(filepath.Join(e.dataDir, "stills", itoa(c.attempt), still), jpg, 0o640)
	cand.send(map[string]any{"type": "signal", "id": 1, "kind": proctor.FaceAnalysis, "phase": "start"})
	cand.await("ack", is("ack", "id", 1))
	store.PublishSignal(ctx, e.bus, store.SignalMessage{AttemptID: c.attempt, Source: "face", Kind: proctor.FaceAbsent, Phase: string(proctor.Start),
		Detail: map[string]any{"device": "pc", "faces": 0, "still": still}})

	f := e.waitFlag(c.attempt, proctor.FaceAbsent)
	if !strings.Contains(f.Evidence, `"still":"`+still+`"`) || !strings.Contains(f.Evidence, `"stream":"face/pc"`) {
		t.Fatalf("evidence %s", f.Evidence)
	}
	e.waitFlag(c.attempt, proctor.FaceChecksDisagree)

	// A WAV file's header and a little silence.
	wav := append([]byte("RIFF\x24\x01\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00data\x00\x01\x00\x00"), make([]byte, 256)...)
	// The page's own still of a covered face.
	hc := e.login(c)
	code, out := call(t, e, hc, "POST", fmt.Sprintf("/api/attempts/%d/stills?kind=face_occluded", c.attempt), jpg)
	var up struct{ Still string }
	json.Unmarshal(out, &up)
	if code != 201 || !proctor.ValidStill(up.Still) || !strings.Contains(up.Still, "-page-face_occluded.jpg") {
		t.Fatalf("upload: %d %s", code, out)
	}
	for _, bad := range []struct {
		kind string
		body []byte
		code int
	}{{"face_occluded", []byte("GIF89a"), 400}, {"telepathy", jpg, 400}, {"face_occluded", make([]byte, 300<<10), 413},
		{"talking", jpg, 400}, {"face_occluded", wav, 400}, {"talking", append(append([]byte{}, wav...), make([]byte, 300<<10)...), 413}} {
		if code, out := call(t, e, hc, "POST", fmt.Sprintf("/api/attempts/%d/stills?kind=%s", c.attempt, bad.kind), bad.body); code != bad.code {
			t.Errorf("upload %s of %d bytes: %d %s, want %d", bad.kind, len(bad.body), code, out, bad.code)
		}
	}
	// A talking clip is a WAV, served as one to those who may watch.
	code, out = call(t, e, hc, "POST", fmt.Sprintf("/api/attempts/%d/stills?kind=talking", c.attempt), wav)
	var clip struct{ Still string }
	json.Unmarshal(out, &clip)
	if code != 201 || !proctor.ValidStill(clip.Still) || !strings.HasSuffix(clip.Still, "-page-talking.wav") {
		t.Fatalf("clip upload: %d %s", code, out)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+stillURL(c.attempt, clip.Still), nil)
	resp, err := e.login(e.invA).Do(req)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "audio/wav" {
		t.Fatalf("clip for the invigilator: %v %v", err, resp.Header)
	}
	resp.Body.Close()

	// Who may see a still.
	for _, who := range []struct {
		name string
		hc   func() int
		want int
	}{
		{"responsible invigilator", func() int {
			code, _ := call(t, e, e.login(e.invA), "GET", stillURL(c.attempt, still), nil)
			return code
		}, 200},
		{"reviewer", func() int {
			code, _ := call(t, e, e.login(e.reviewer), "GET", stillURL(c.attempt, up.Still), nil)
			return code
		}, 200},
		{"invigilator of another room", func() int {
			code, _ := call(t, e, e.login(e.invD), "GET", stillURL(c.attempt, still), nil)
			return code
		}, 403},
		{"the candidate", func() int { code, _ := call(t, e, hc, "GET", stillURL(c.attempt, still), nil); return code }, 403},
		{"a path, not a name", func() int {
			code, _ := call(t, e, e.login(e.reviewer), "GET", stillURL(c.attempt, "..%2f..%2fexamhall.db"), nil)
			return code
		}, 404},
	} {
		if got := who.hc(); got != who.want {
			t.Errorf("%s: %d, want %d", who.name, got, who.want)
		}
	}
}

func stillURL(attempt int64, name string) string {
	return fmt.Sprintf("/api/attempts/%d/stills/%s", attempt, name)
}
