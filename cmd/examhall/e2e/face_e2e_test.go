package e2e

import (
	"encoding/json"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/examhall/examhall/frontend/browsertest"
	"github.com/examhall/examhall/store"
)

// faceFixture is the MJPEG camera: 2 s segments, each marked by the colour
// of its top-left corner (media/vision/testdata/make.sh).
const faceFixture = "../../../media/vision/testdata/face.mjpeg"

var segmentColours = map[string][3]int{
	"clean": {0, 255, 0}, "none": {255, 0, 0}, "two": {0, 0, 255}, "covered": {255, 0, 255}, "turned": {255, 255, 0}, "dim": {0, 255, 255},
}

// segmentOf reads the segment marker of a still of the face fixture.
func segmentOf(t *testing.T, path string) string { return markerOf(t, path, segmentColours) }

// markerOf reads the marker of a still: the name of the nearest colour.
func markerOf(t *testing.T, path string, colours map[string][3]int) string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("still: %v", err)
	}
	defer f.Close()
	img, err := jpeg.Decode(f)
	if err != nil {
		t.Fatalf("still %s: %v", path, err)
	}
	b := img.Bounds()
	var sum [3]int
	n := 0
	for y := b.Min.Y + b.Dy()/120; y < b.Min.Y+b.Dy()/30; y++ {
		for x := b.Min.X + b.Dx()/160; x < b.Min.X+b.Dx()/40; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			sum[0], sum[1], sum[2] = sum[0]+int(r>>8), sum[1]+int(g>>8), sum[2]+int(bl>>8)
			n++
		}
	}
	best, bestD := "", 1<<30
	for name, c := range colours {
		d := 0
		for i := range 3 {
			v := sum[i]/n - c[i]
			d += v * v
		}
		if d < bestD {
			best, bestD = name, d
		}
	}
	return best
}

// expectedSegment is where each signal kind belongs in the fixture.
var expectedSegment = map[string]string{"face_absent": "none", "faces_multiple": "two", "face_occluded": "covered", "head_turned": "turned"}

// The exam page in Chromium with the face fixture as its camera: the
// page's face analysis (Human in a Web Worker) reports no face, two faces,
// a covered face and a turned head in the right segments and nothing in
// the clean ones (one of them in other light), each with its still; the
// server's own check of the same camera over WebRTC agrees on no face and
// two faces; and the page's main thread has no long task (over 50 ms)
// caused by the analysis.
func TestFaceAnalysisInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	models := "../../../frontend/node_modules"
	if _, err := os.Stat(filepath.Join(models, "@vladmandic/human/dist/human.esm.js")); err != nil {
		t.Skip("face models are not installed: run make (npm ci in frontend/)")
	}
	e := newExamEnv(t, "sqlite", 1)
	e.stop()
	e.faceModels, e.faceCheck = models, true
	e.startServer()
	cd := e.cands[0]
	fixture, _ := filepath.Abs(faceFixture)
	ctx := browsertest.New(t, chromedp.Flag("use-file-for-fake-video-capture", fixture))
	// Every long task of the page, from its first script on.
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
		window.__long = [];
		new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push({ start: e.startTime, ms: e.duration, name: e.name }); })
			.observe({ type: 'longtask', buffered: true });`}); err != nil {
		t.Fatal(err)
	}
	// The device check keeps a frame of the candidate's face.
	browsertest.Run(t, ctx, "the device check",
		e.loginPage(cd), chromedp.WaitVisible("a[data-check]"), chromedp.Click("a[data-check]"), chromedp.WaitVisible("#check-preview"))
	browsertest.WaitTrue(t, ctx, "the verdict", `document.querySelector('#check-verdict').dataset.passed !== undefined`, 30*time.Second)
	if n, _ := filepath.Glob(filepath.Join(e.dataDir, "stills", itoa(cd.attempt), "*-page-enrol.jpg")); len(n) != 1 {
		t.Fatalf("enrolment frames: %v", n)
	}
	browsertest.Run(t, ctx, "candidate starts",
		chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible("a[data-attempt]"), chromedp.Click("a[data-attempt]"),
		chromedp.WaitVisible("#start"), chromedp.Click("#start"), chromedp.WaitVisible("#selfview"))
	browsertest.WaitTrue(t, ctx, "the face analysis runs", `window.examhallFace?.ready === true || !!window.examhallFace?.error`, 60*time.Second)
	if msg := browsertest.Eval[string](t, ctx, `window.examhallFace.error || ''`); msg != "" {
		t.Fatalf("face analysis: %s", msg)
	}
	browsertest.WaitTrue(t, ctx, "the enrolment frame is the baseline", `window.examhallFace.enrolled === true`, 10*time.Second)
	from := browsertest.Eval[float64](t, ctx, `performance.now()`)
	began := time.Now()
	// Two loops of the fixture (16 s each); more for BENCHMARKS.md.
	loops := 2
	if n, err := strconv.Atoi(os.Getenv("EXAMHALL_FACE_LOOPS")); err == nil && n > 0 {
		loops = n
	}
	for time.Since(began) < time.Duration(loops)*16*time.Second {
		time.Sleep(time.Second)
	}
	judged := browsertest.Eval[[]map[string]any](t, ctx, `window.examhallFace.log`)
	defer func() {
		if t.Failed() || os.Getenv("EXAMHALL_FACE_LOG") != "" { // what the page judged, frame by frame
			for _, r := range judged {
				t.Logf("%v", r)
			}
		}
	}()
	frames := browsertest.Eval[float64](t, ctx, `window.examhallFace.frames`)
	// A long task is the analysis's when the page's own face work in it
	// (face.js measures it as "face") takes half of it or more; any long
	// task of the page is logged.
	long := browsertest.Eval[[]map[string]any](t, ctx, fmt.Sprintf(`window.__long.filter(e => e.start >= %f)`, from))
	blamed := browsertest.Eval[[]map[string]any](t, ctx, fmt.Sprintf(`(() => {
		const face = performance.getEntriesByName('face', 'measure');
		return window.__long.filter(e => e.start >= %f).map(e => ({ ...e,
			face: face.filter(f => f.startTime >= e.start - 1 && f.startTime + f.duration <= e.start + e.ms + 1).reduce((s, f) => s + f.duration, 0) }))
			.filter(e => e.face >= e.ms / 2);
	})()`, from))
	measures := browsertest.Eval[[]float64](t, ctx, fmt.Sprintf(`performance.getEntriesByName('face', 'measure').filter(f => f.startTime >= %f).map(f => f.duration)`, from))
	sort.Float64s(measures)
	t.Logf("analysed %v frames in %v (%.1f a second); the page's share per step: median %.1f ms, max %.1f ms; long tasks: %d, of them the analysis's: %v",
		frames, time.Since(began).Round(time.Second), frames/time.Since(began).Seconds(), measures[len(measures)/2], measures[len(measures)-1], len(long), blamed)
	// The analysis runs in a worker: the page's own share of a step is a
	// frame's copy, far under a display frame (16 ms), and a long task in
	// it is the machine's pause, not the analysis. Were the analysis on
	// the main thread, every step would take it (100 ms and more), so the
	// check is the typical step and how often a step is long, not one
	// step's time on a busy 2-core machine (where GC and other tests stall
	// a step now and then: one or two steps of 90-105 ms, seen in two CI
	// runs on 2026-12-02).
	if median := measures[len(measures)/2]; median > 16 || len(blamed) > len(measures)/10 {
		t.Errorf("the exam page's face work is on its main thread: median step %.1f ms, %d long tasks in %d steps: %v", median, len(blamed), len(measures), blamed)
	}

	var sigs []store.Signal
	e.db.Where("attempt_id = ? AND phase = ? AND at >= ?", cd.attempt, "start", began.Add(-time.Second)).Order("id").Find(&sigs)
	got := map[string]map[string]int{} // source/kind → segment → starts
	for _, s := range sigs {
		var d struct{ Still string }
		json.Unmarshal([]byte(s.Detail), &d)
		if _, ok := expectedSegment[s.Kind]; !ok {
			continue
		}
		seg := "(no still)"
		if d.Still != "" {
			seg = segmentOf(t, filepath.Join(e.dataDir, "stills", itoa(cd.attempt), d.Still))
		}
		k := s.Source + "/" + s.Kind
		if got[k] == nil {
			got[k] = map[string]int{}
		}
		got[k][seg]++
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Precision: starts in the segment the kind belongs to, of all its
	// starts; recall: those segments (one a loop) that got a start.
	for _, k := range keys {
		kind := k[strings.Index(k, "/")+1:]
		total, right := 0, got[k][expectedSegment[kind]]
		for _, n := range got[k] {
			total += n
		}
		t.Logf("%-26s %v  precision %d/%d  recall %d/%d", k, got[k], right, total, min(right, loops), loops)
	}
	for _, kind := range []string{"face_absent", "faces_multiple", "face_occluded", "head_turned"} {
		if got["page/"+kind][expectedSegment[kind]] == 0 {
			t.Errorf("the page never reported %s in the %q segment", kind, expectedSegment[kind])
		}
	}
	// The server looks at a key frame of the camera every 2.5-3 s, so a
	// 2 s segment may hold none of them: here its check must only be seen
	// to run over WebRTC (one start of its kinds in the right segment) and
	// never raise anything in a clean one. Its recall is measured on 8 s
	// segments (TestFaceSignalsOnUnseenFaces, media/vision's tests).
	server := 0
	for k, segs := range got {
		if segs["clean"] > 0 || segs["dim"] > 0 || segs["(no still)"] > 0 {
			t.Errorf("%s: %v (a start in a clean segment, or without a still)", k, segs)
		}
		if kind, ok := strings.CutPrefix(k, "face/"); ok {
			server += segs[expectedSegment[kind]]
		}
	}
	if server == 0 {
		t.Errorf("the server's check raised nothing in a no-face or two-face segment: %v", got)
	}

	// The invigilator sees the flags with their stills.
	inv := browsertest.New(t)
	browsertest.Run(t, inv, "invigilator opens the candidate",
		e.loginPage(e.invA), chromedp.WaitVisible(".tile[data-attempt]"), chromedp.Click(".tile[data-attempt]"))
	browsertest.WaitTrue(t, inv, "a flag's still on the console",
		`[...document.querySelectorAll('#history .stills img')].some(i => i.complete && i.naturalWidth > 0)`, 20*time.Second)
	browsertest.Screenshot(t, inv, "console-face-stills")
}
