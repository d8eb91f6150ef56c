package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/examhall/examhall/frontend/browsertest"
	"github.com/examhall/examhall/store"
)

// peopleSet is testdata/people/out/segments.json: the sequences of people
// the face checks were never tuned on (testdata/people/make.sh).
type peopleSet struct {
	Seconds int               `json:"segment_seconds"`
	Kinds   []string          `json:"kinds"`
	Markers map[string]string `json:"markers"`
	People  []string          `json:"people"`
}

// kindOfSegment is the signal each segment kind must raise.
func kindOfSegment(seg string) string {
	switch {
	case seg == "none":
		return "face_absent"
	case seg == "two":
		return "faces_multiple"
	case strings.HasPrefix(seg, "covered"):
		return "face_occluded"
	case seg == "turned":
		return "head_turned"
	}
	return ""
}

// tally counts, per source and signal kind, the starts in each segment
// kind and the event segments that got one.
type tally struct {
	starts map[string]map[string]int // source/kind → segment → starts
	hit    map[string]int            // source/kind → event segments with a start
	events map[string]int            // kind → event segments shown
}

// TestFaceSignalsOnUnseenFaces plays each person's sequence as the exam
// page's camera for one loop and a segment, and prints the precision and
// recall of every face signal, the page's and the server's apart.
// Precision: starts whose still is in a segment of the signal's kind, of
// all its starts; recall: event segments of that kind that got a start.
// It needs the sequences: sh testdata/people/make.sh /tmp/people, then
// EXAMHALL_PEOPLE=/tmp/people (EXAMHALL_PEOPLE_ONLY=name for one person).
func TestFaceSignalsOnUnseenFaces(t *testing.T) {
	dir := os.Getenv("EXAMHALL_PEOPLE")
	if dir == "" || testing.Short() {
		t.Skip("set EXAMHALL_PEOPLE to the output of testdata/people/make.sh")
	}
	models := "../../../frontend/node_modules"
	if _, err := os.Stat(filepath.Join(models, "@vladmandic/human/dist/human.esm.js")); err != nil {
		t.Skip("face models are not installed: run make (npm ci in frontend/)")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "segments.json"))
	if err != nil {
		t.Fatal(err)
	}
	var set peopleSet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	colours := map[string][3]int{}
	for k, hex := range set.Markers {
		v, err := strconv.ParseUint(strings.TrimPrefix(hex, "#"), 16, 32)
		if err != nil {
			t.Fatalf("marker %s: %v", hex, err)
		}
		colours[k] = [3]int{int(v >> 16), int(v >> 8 & 0xff), int(v & 0xff)}
	}
	all := tally{starts: map[string]map[string]int{}, hit: map[string]int{}, events: map[string]int{}}
	for _, p := range set.People {
		if only := os.Getenv("EXAMHALL_PEOPLE_ONLY"); only != "" && only != p {
			continue
		}
		t.Run(p, func(t *testing.T) { playPerson(t, filepath.Join(dir, p+".mjpeg"), models, set, colours, all) })
	}
	keys := make([]string, 0, len(all.starts))
	for k := range all.starts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kind := k[strings.Index(k, "/")+1:]
		total, right := 0, 0
		for seg, n := range all.starts[k] {
			total += n
			if kindOfSegment(seg) == kind {
				right += n
			}
		}
		t.Logf("%-22s precision %d/%d  recall %d/%d  starts by segment %v", k, right, total, all.hit[k], all.events[kind], all.starts[k])
	}
}

// playPerson runs one person's sequence through the exam page.
func playPerson(t *testing.T, fixture, models string, set peopleSet, colours map[string][3]int, all tally) {
	e := newExamEnv(t, "sqlite", 1)
	e.stop()
	e.faceModels, e.faceCheck = models, true
	e.startServer()
	cd := e.cands[0]
	ctx := browsertest.New(t, chromedp.Flag("use-file-for-fake-video-capture", fixture))
	browsertest.Run(t, ctx, "the device check",
		e.loginPage(cd), chromedp.WaitVisible("a[data-check]"), chromedp.Click("a[data-check]"), chromedp.WaitVisible("#check-preview"))
	browsertest.WaitTrue(t, ctx, "the verdict", `document.querySelector('#check-verdict').dataset.passed !== undefined`, 30*time.Second)
	browsertest.Run(t, ctx, "candidate starts",
		chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible("a[data-attempt]"), chromedp.Click("a[data-attempt]"),
		chromedp.WaitVisible("#start"), chromedp.Click("#start"), chromedp.WaitVisible("#selfview"))
	browsertest.WaitTrue(t, ctx, "the face analysis runs", `window.examhallFace?.ready === true || !!window.examhallFace?.error`, 60*time.Second)
	began := time.Now()
	seg := time.Duration(set.Seconds) * time.Second
	time.Sleep(time.Duration(len(set.Kinds)+1) * seg)
	if os.Getenv("EXAMHALL_FACE_LOG") != "" {
		for _, r := range browsertest.Eval[[]map[string]any](t, ctx, `window.examhallFace.log`) {
			t.Logf("%v", r)
		}
	}
	// Every event segment is shown whole once in a loop and a segment.
	for _, k := range set.Kinds {
		if kind := kindOfSegment(k); kind != "" {
			all.events[kind]++
		}
	}
	var sigs []store.Signal
	e.db.Where("attempt_id = ? AND phase = ? AND at >= ?", cd.attempt, "start", began.Add(-time.Second)).Order("id").Find(&sigs)
	hit := map[string]map[string]bool{}
	for _, s := range sigs {
		if _, ok := map[string]bool{"face_absent": true, "faces_multiple": true, "face_occluded": true, "head_turned": true}[s.Kind]; !ok {
			continue
		}
		var d struct{ Still string }
		json.Unmarshal([]byte(s.Detail), &d)
		segName := "(no still)"
		if d.Still != "" {
			segName = markerOf(t, filepath.Join(e.dataDir, "stills", itoa(cd.attempt), d.Still), colours)
		}
		k := s.Source + "/" + s.Kind
		if all.starts[k] == nil {
			all.starts[k], hit[k] = map[string]int{}, map[string]bool{}
		} else if hit[k] == nil {
			hit[k] = map[string]bool{}
		}
		all.starts[k][segName]++
		if kindOfSegment(segName) == s.Kind && !hit[k][segName] {
			hit[k][segName] = true
			all.hit[k]++
		}
		t.Logf("%s %s in %s %s", k, s.At.Format("15:04:05.0"), segName, s.Detail)
	}
}
