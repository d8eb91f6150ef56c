package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/examhall/examhall/frontend/browsertest"
	"github.com/examhall/examhall/store"
)

// voiceFixtures makes the microphone's sounds with espeak-ng and ffmpeg:
// speech.wav is 6 s of silence, about 6 s of English speech, 6 s of
// silence, about 6 s of Mandarin speech (30 s, looped by Chromium);
// quiet.wav is 10 s of silence, 10 s of music (a chord with a melody and
// a beat), 10 s of room noise, with no speech.
func voiceFixtures(t *testing.T) (speech, quiet string) {
	for _, tool := range []string{"espeak-ng", "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install espeak-ng ffmpeg; .ci/run does it)", tool)
		}
	}
	dir := t.TempDir()
	run := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run("espeak-ng", "-v", "en", "-s", "150", "-w", filepath.Join(dir, "en.wav"),
		"Excuse me, could you tell me the answer to question seven? I think it is the second option.")
	run("espeak-ng", "-v", "cmn", "-s", "150", "-w", filepath.Join(dir, "zh.wav"), "请问第七题的答案是什么？我觉得应该选第二个。")
	speech = filepath.Join(dir, "speech.wav")
	run("ffmpeg", "-v", "error", "-y",
		"-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-i", filepath.Join(dir, "en.wav"), "-i", filepath.Join(dir, "zh.wav"),
		"-filter_complex", "[0]atrim=0:6[s1];[1]aresample=48000,apad,atrim=0:6[e];[0]atrim=0:6[s2];[2]aresample=48000,apad,atrim=0:6[z];[0]atrim=0:6[s3];"+
			"[s1][e][s2][z][s3]concat=n=5:v=0:a=1", "-ar", "48000", "-ac", "1", speech)
	quiet = filepath.Join(dir, "quiet.wav")
	run("ffmpeg", "-v", "error", "-y",
		"-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono",
		"-f", "lavfi", "-i", "sine=f=220:r=48000", "-f", "lavfi", "-i", "sine=f=277:r=48000", "-f", "lavfi", "-i", "sine=f=330:r=48000",
		"-f", "lavfi", "-i", "aevalsrc='0.3*sin(2*PI*(440+110*floor(mod(2*t,4)))*t)*lt(mod(t,0.5),0.4)':s=48000",
		"-f", "lavfi", "-i", "anoisesrc=r=48000:color=pink:amplitude=0.05",
		"-filter_complex", "[0]atrim=0:10[s];[1][2][3][4]amix=inputs=4,atrim=0:10[m];[5]atrim=0:10[n];[s][m][n]concat=n=3:v=0:a=1",
		"-ar", "48000", "-ac", "1", quiet)
	return speech, quiet
}

// The exam page in Chromium with speech as its microphone reports
// `talking` in the speech only (each occurrence ending in the silence
// after it, its evidence a WAV clip that plays), and nothing with music,
// room noise and silence; the page's main thread stays free. The server's
// sound check hears the speech over WebRTC too, and the music, which
// flags nothing while the page listens.
func TestTalkingInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	models := "../../../frontend/node_modules"
	if _, err := os.Stat(filepath.Join(models, "@ricky0123/vad-web/dist/silero_vad_v5.onnx")); err != nil {
		t.Skip("voice models are not installed: run make (npm ci in frontend/)")
	}
	speech, quiet := voiceFixtures(t)
	t.Run("speech", func(t *testing.T) {
		e, cd, starts := listen(t, models, speech, 30*time.Second)
		// 30 s of the fixture hold its two speeches once (and up to 6 s of
		// the next loop's first, which starts at 36 s).
		if len(starts) < 2 || len(starts) > 3 {
			t.Fatalf("talking starts: %d, want one for each speech (2): %+v", len(starts), starts)
		}
		var ends []store.Signal
		e.db.Where("attempt_id = ? AND kind = ? AND phase = ?", cd.attempt, "talking", "end").Find(&ends)
		if len(ends) < len(starts)-1 {
			t.Errorf("talking ended %d times for %d starts: each speech is followed by 6 s of silence", len(ends), len(starts))
		}
		var d struct{ Still string }
		json.Unmarshal([]byte(starts[0].Detail), &d)
		if !strings.HasSuffix(d.Still, "-page-talking.wav") {
			t.Fatalf("evidence of a talking start: %q", starts[0].Detail)
		}
		out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
			filepath.Join(e.dataDir, "stills", itoa(cd.attempt), d.Still)).CombinedOutput()
		secs, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil || secs < 1 || secs > 4.1 {
			t.Errorf("the clip plays %v s (%v, %s): want 1-4 s", secs, err, out)
		}
		var flags []store.Flag
		e.db.Where("attempt_id = ? AND kind = ?", cd.attempt, "talking").Find(&flags)
		if len(flags) == 0 {
			t.Errorf("no talking flag")
		}
		// The server's sound check heard both speeches too.
		var server int64
		e.db.Model(&store.Signal{}).Where("attempt_id = ? AND kind = ? AND phase = ? AND source = ?", cd.attempt, "talking", "start", "media").Count(&server)
		if server < 2 {
			t.Errorf("the server's sound check started %d times for two speeches", server)
		}
	})
	t.Run("music, noise and silence", func(t *testing.T) {
		e, cd, starts := listen(t, models, quiet, 30*time.Second)
		if len(starts) != 0 {
			t.Errorf("talking without speech: %+v", starts)
		}
		// The server hears the music as sound: recorded, no flag while the
		// page's model listens.
		var flags []store.Flag
		e.db.Where("attempt_id = ? AND kind = ?", cd.attempt, "talking").Find(&flags)
		if len(flags) != 0 {
			t.Errorf("a talking flag without speech: %+v", flags)
		}
	})
}

// listen runs the exam page with the file as its microphone for a while
// and returns the talking starts.
func listen(t *testing.T, models, file string, d time.Duration) (*examEnv, cand, []store.Signal) {
	e := newExamEnv(t, "sqlite", 1)
	e.stop()
	e.faceModels = models
	e.startServer()
	cd := e.cands[0]
	ctx := browsertest.Start(t, "candidate starts", []chromedp.ExecAllocatorOption{chromedp.Flag("use-file-for-fake-audio-capture", file)}, nil,
		e.loginPage(cd),
		chromedp.WaitVisible("a[data-attempt]"), chromedp.Click("a[data-attempt]"),
		chromedp.WaitEnabled("#start"), chromedp.Click("#start"), chromedp.WaitVisible("#selfview"))
	browsertest.WaitTrue(t, ctx, "the voice detection runs", `window.examhallVoice?.ready === true || !!window.examhallVoice?.error`, 60*time.Second)
	if msg := browsertest.Eval[string](t, ctx, `window.examhallVoice.error`); msg != "" {
		t.Fatalf("voice detection: %s", msg)
	}
	began := time.Now()
	browsertest.Run(t, ctx, "watch the main thread", chromedp.Evaluate[chromedp.Void](`window.__long = [];
		new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__long.push(Math.round(e.duration)); }).observe({ type: 'longtask' });`))
	time.Sleep(d)
	frames := browsertest.Eval[float64](t, ctx, `window.examhallVoice.frames`)
	long := browsertest.Eval[[]float64](t, ctx, `window.__long`)
	t.Logf("%.0f frames of 32 ms judged in %v; long tasks (ms): %v", frames, time.Since(began).Round(time.Second), long)
	if frames < d.Seconds()*20 {
		t.Errorf("the model judged %.0f frames in %v: it falls behind the microphone (31 a second)", frames, d)
	}
	// The model runs on the page's thread, about a millisecond a frame: a
	// page that kept up with every frame and lost under a tenth of its
	// time to long tasks (this 2-core machine pauses a page now and then,
	// once for 0.6 s in a run here) stays responsive.
	busy := 0.0
	for _, ms := range long {
		busy += ms
	}
	if busy > d.Seconds()*1000/10 {
		t.Errorf("the page's main thread is busy: %d long tasks, %.0f ms in %v: %v", len(long), busy, d, long)
	}
	var starts []store.Signal
	e.db.Where("attempt_id = ? AND kind = ? AND phase = ?", cd.attempt, "talking", "start").Order("id").Find(&starts)
	page := starts[:0:0]
	for _, s := range starts {
		t.Logf("talking (%s) %s %s", s.Source, s.At.Sub(began).Round(100*time.Millisecond), s.Detail)
		if s.Source == "page" {
			page = append(page, s)
		}
	}
	return e, cd, page
}
