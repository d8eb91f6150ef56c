package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/examhall/examhall/proctor"
)

// A page flooding the proctor with signals is refused past its rate, and
// an attempt's evidence stills are bounded; the connection goes on.
func TestPageQuotas(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	c := e.cands[0]
	cand := e.connect(c)
	cand.start()
	refused := 0
	for i := range proctor.PageSignalBurst + 10 {
		cand.send(map[string]any{"type": "signal", "id": i, "kind": "copy", "phase": "instant"})
	}
	for i := range proctor.PageSignalBurst + 10 {
		m := cand.await("reply", func(m map[string]any) bool { return m["id"] == float64(i) })
		if m["type"] == "error" {
			if m["code"] != "too_many_signals" {
				t.Fatalf("signal %d: %v", i, m)
			}
			refused++
		}
	}
	if refused == 0 || refused > 10 {
		t.Fatalf("%d of %d signals refused", refused, proctor.PageSignalBurst+10)
	}
	cand.send(map[string]any{"type": "time", "id": "t"})
	cand.await("time", is("time", "id", "t"))

	jpg, err := os.ReadFile("../../../media/vision/testdata/face-none.jpg")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.dataDir, "stills", itoa(c.attempt))
	os.MkdirAll(dir, 0o750)
	for i := range proctor.MaxStillsPerAttempt {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d-page-face_absent.jpg", 1764230000000+i)), jpg, 0o640)
	}
	hc := e.login(c)
	code, out := call(t, e, hc, "POST", fmt.Sprintf("/api/attempts/%d/stills?kind=face_occluded", c.attempt), jpg)
	expect(t, "a still past the quota", code, out, 429, "too_many_stills")
}
