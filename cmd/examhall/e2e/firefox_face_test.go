package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image/jpeg"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

// The exam page's face analysis in Firefox ESR (puppeteer-core over
// WebDriver BiDi, frontend/browsertest/firefox/face.mjs): Human loads in the
// page's module Web Worker on the wasm backend and judges frames of the
// fake camera, whose synthetic pattern has no face; the page reports
// face_absent with a still within the rule's threshold, the server stores
// the signal and raises the flag (a warning once it lasts), and no long
// task of the page's main thread is the analysis's. Firefox has no Long
// Tasks API: face.mjs watches the main thread with a heartbeat and checks
// that the watch sees a long task made on purpose.
func TestFaceAnalysisInFirefox(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	dir := firefoxHarness(t)
	models := "../../../frontend/node_modules"
	if _, err := os.Stat(filepath.Join(models, "@vladmandic/human/dist/human.esm.js")); err != nil {
		t.Skip("face models are not installed: run make models (npm ci in frontend/)")
	}
	e := newExamEnv(t, "sqlite", 1)
	e.stop()
	e.faceModels = models
	e.startServer()
	cd := e.cands[0]
	rule := proctor.DefaultRules[proctor.FaceAbsent]

	// Ten seconds of analysis at least; more for BENCHMARKS.md.
	seconds := 10
	if n, err := strconv.Atoi(os.Getenv("EXAMHALL_FACE_SECONDS")); err == nil && n > seconds {
		seconds = n
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute+time.Duration(seconds)*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "face.mjs", e.srv.URL, cd.ticket, cd.password)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	said := make(chan string)
	go func() {
		defer close(said)
		lines := bufio.NewScanner(out)
		lines.Buffer(nil, 1<<20)
		for lines.Scan() {
			said <- lines.Text()
		}
	}()
	// next is the script's next line with the given prefix, decoded.
	next := func(prefix string, v any) {
		t.Helper()
		for line := range said {
			if rest, ok := strings.CutPrefix(line, prefix+" "); ok {
				if err := json.Unmarshal([]byte(rest), v); err != nil {
					t.Fatalf("%s: %v", line, err)
				}
				return
			}
			t.Logf("face.mjs: %s", line)
		}
		in.Close()
		err := cmd.Wait()
		t.Fatalf("face.mjs ended before %q: %v\n%s", prefix, err, stderr.String())
	}

	type judged struct {
		Faces int `json:"faces"`
		Ms    int `json:"ms"`
	}
	var first struct {
		Backend string   `json:"backend"`
		Frames  int      `json:"frames"`
		Log     []judged `json:"log"`
	}
	next("analysing", &first)
	began := time.Now()
	if first.Backend != "wasm" {
		t.Errorf("the worker's backend is %q, not wasm", first.Backend)
	}
	for _, r := range first.Log {
		if r.Faces != 0 {
			t.Errorf("a face in the fake camera's pattern: %+v", first.Log)
			break
		}
	}

	// The server: the page's report that its analysis runs, its face_absent
	// with a still, and the flag, a warning once the condition has lasted.
	var status, absent store.Signal
	var flag store.Flag
	deadline := time.Now().Add(time.Duration(rule.SustainedAfter) + 20*time.Second)
	for time.Now().Before(deadline) && (absent.ID == 0 || flag.Severity != string(rule.SustainedTo)) {
		time.Sleep(200 * time.Millisecond)
		e.db.Where("attempt_id = ? AND source = ? AND kind = ? AND phase = ?", cd.attempt, "page", proctor.FaceAnalysis, "start").Take(&status)
		e.db.Where("attempt_id = ? AND source = ? AND kind = ? AND phase = ?", cd.attempt, "page", proctor.FaceAbsent, "start").Take(&absent)
		e.db.Where("attempt_id = ? AND kind = ?", cd.attempt, proctor.FaceAbsent).Take(&flag)
	}
	var still struct {
		Still   string `json:"still"`
		Backend string `json:"backend"`
		Version string `json:"version"`
	}
	json.Unmarshal([]byte(status.Detail), &still)
	if status.ID == 0 || still.Backend != "wasm" || still.Version == "" {
		t.Errorf("the page's face_analysis start: %+v", status)
	}
	if absent.ID == 0 {
		t.Fatalf("the page never reported face_absent (flag %+v)\n%s", flag, stderr.String())
	}
	if took := absent.At.Sub(status.At); took > time.Duration(rule.Threshold) {
		t.Errorf("face_absent came %v after the analysis started, over the rule's %v", took, time.Duration(rule.Threshold))
	}
	still.Still = ""
	json.Unmarshal([]byte(absent.Detail), &still)
	if !proctor.ValidStill(still.Still) || !strings.Contains(still.Still, "-page-face_absent") {
		t.Fatalf("face_absent without the page's still: %s", absent.Detail)
	}
	f, err := os.Open(filepath.Join(e.dataDir, "stills", itoa(cd.attempt), still.Still))
	if err != nil {
		t.Fatalf("the still: %v", err)
	}
	img, err := jpeg.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() < 160 {
		t.Fatalf("the still %s: %v", still.Still, err)
	}
	if flag.ID == 0 || !flag.FirstAt.Equal(absent.At) || !strings.Contains(flag.Evidence, still.Still) || !strings.Contains(flag.Evidence, `"stream":"page"`) {
		t.Fatalf("the face_absent flag: %+v (signal at %v, still %s)", flag, absent.At, still.Still)
	}
	if flag.Severity != string(rule.SustainedTo) {
		t.Errorf("the face_absent flag after %v: %s, not %s", time.Since(absent.At).Round(time.Second), flag.Severity, rule.SustainedTo)
	}

	// The page's own account of its analysis.
	time.Sleep(time.Until(began.Add(time.Duration(seconds) * time.Second)))
	io.WriteString(in, "done\n")
	var report struct {
		Seconds  float64          `json:"seconds"`
		Frames   int              `json:"frames"`
		Error    string           `json:"error"`
		Last     judged           `json:"last"`
		Beats    int              `json:"beats"`
		Measures int              `json:"measures"`
		Median   float64          `json:"median"`
		Max      float64          `json:"max"`
		Worker   [2]float64       `json:"worker"`
		Long     []map[string]any `json:"long"`
		Blamed   []map[string]any `json:"blamed"`
		Control  bool             `json:"control"`
	}
	next("report", &report)
	in.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("face.mjs: %v\n%s", err, stderr.String())
	}
	t.Logf("Firefox: analysed %d frames in %.0f s (%.1f a second; worker time a frame median %.0f ms, max %.0f ms); the page's share per step: median %.1f ms, max %.1f ms; heartbeats %d; long tasks: %v, of them the analysis's: %v",
		report.Frames, report.Seconds, float64(report.Frames)/report.Seconds, report.Worker[0], report.Worker[1], report.Median, report.Max, report.Beats, report.Long, report.Blamed)
	if report.Error != "" || report.Last.Faces != 0 || float64(report.Frames) < report.Seconds {
		t.Errorf("the analysis in Firefox: %d frames in %.0f s, error %q, last %+v", report.Frames, report.Seconds, report.Error, report.Last)
	}
	if report.Measures < report.Frames || !report.Control || float64(report.Beats) < 20*report.Seconds {
		t.Errorf("the long-task watch did not watch: %d face measures for %d frames, %d heartbeats in %.0f s, a made long task seen: %v",
			report.Measures, report.Frames, report.Beats, report.Seconds, report.Control)
	}
	if len(report.Blamed) > 0 {
		t.Errorf("the exam page had %d long tasks during its face analysis work in Firefox: %v", len(report.Blamed), report.Blamed)
	}

	// The pattern never shows a face, nor anything else to report.
	var sigs []store.Signal
	e.db.Where("attempt_id = ? AND source = ? AND kind IN ?", cd.attempt, "page",
		[]string{proctor.FaceAbsent, proctor.FacesMultiple, proctor.FaceOccluded, proctor.HeadTurned}).Order("id").Find(&sigs)
	if len(sigs) != 1 {
		for _, s := range sigs {
			t.Logf("%s %s %s %s", s.At.Format("15:04:05.000"), s.Kind, s.Phase, s.Detail)
		}
		t.Errorf("the page's face signals: %d, want the one face_absent start", len(sigs))
	}
}
