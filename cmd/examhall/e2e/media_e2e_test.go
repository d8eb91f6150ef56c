package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/frontend/browsertest"
	"github.com/examhall/examhall/store"
)

// The exam page in Chromium publishes its (fake) camera and microphone over
// real WebRTC; the invigilator's console (a second Chromium) decodes it
// live; and the server records both into one playable WebM file.
func TestExamPagePublishesCameraInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe is not installed (apt-get install ffmpeg; .ci/run does it)")
	}
	e := newExamEnv(t, "sqlite", 1)
	cd := e.cands[0]
	ctx := browsertest.New(t)
	browsertest.Run(t, ctx, "candidate starts",
		e.loginPage(cd),
		chromedp.WaitVisible("a[data-attempt]"), chromedp.Click("a[data-attempt]"),
		chromedp.WaitEnabled("#start"), chromedp.Click("#start"), chromedp.WaitVisible("#selfview"))
	browsertest.WaitTrue(t, ctx, "the preview plays", `document.querySelector('#selfview').videoWidth > 0`, 15*time.Second)
	// Pair the phone: the PC page shows a QR code with a single-use link, a
	// second Chromium plays the phone and opens it.
	browsertest.Run(t, ctx, "pair", chromedp.Click("#pair"), chromedp.WaitVisible("#pair-url"))
	link := browsertest.Eval[string](t, ctx, `document.querySelector('#pair-url').textContent`)
	if !strings.Contains(link, "/phone?t=") || !strings.HasPrefix(browsertest.Eval[string](t, ctx, `document.querySelector('#pair-qr').src`), "data:image/png;base64,") {
		t.Fatalf("pairing link %q", link)
	}
	phone := browsertest.New(t)
	browsertest.Run(t, phone, "the phone opens the link", chromedp.Navigate(link))
	browsertest.WaitTrue(t, phone, "the phone is live", `document.querySelector('#phone-status').className.includes('ok')`, 20*time.Second)
	browsertest.WaitTrue(t, ctx, "the PC page shows the phone's picture",
		`document.querySelector('#pair-status').textContent.includes('已连接') && document.querySelector('#phoneview').getVideoPlaybackQuality().totalVideoFrames > 3`, 20*time.Second)
	browsertest.Screenshot(t, ctx, "pairing")
	// The link works once.
	if _, resp, err := wsDialer(&http.Client{}).Dial("ws"+strings.TrimPrefix(strings.Replace(link, "/phone?", "/ws/phone?", 1), "http"), nil); err == nil || resp.StatusCode != 409 {
		t.Fatalf("a reused pairing link: %v %v", err, resp)
	}
	browsertest.Run(t, ctx, "close the pairing dialog", chromedp.Click("#pairdlg .confirm-actions button"))

	var rec store.Recording
	for i := 0; i < 300 && e.db.Where("attempt_id = ? AND device = ?", cd.attempt, "pc").Take(&rec).Error != nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if rec.ID == 0 {
		t.Fatal("no recording started")
	}
	// The responsible invigilator's console shows the camera live.
	inv := browsertest.New(t)
	browsertest.Run(t, inv, "invigilator opens the console",
		e.loginPage(e.invA),
		chromedp.WaitVisible(".tile[data-attempt]"))
	browsertest.WaitTrue(t, inv, "frames decoded in the tile",
		`(() => { const v = document.querySelector('.tile video.cam.live'); return !!v && v.getVideoPlaybackQuality().totalVideoFrames > 5; })()`, 20*time.Second)
	browsertest.Run(t, inv, "open the candidate large", chromedp.Click(".tile[data-attempt]"))
	browsertest.WaitTrue(t, inv, "frames decoded in the large view",
		`(() => { const v = document.querySelector('.cams.big video.cam.live'); return !!v && v.getVideoPlaybackQuality().totalVideoFrames > 5; })()`, 20*time.Second)
	browsertest.WaitTrue(t, inv, "the phone's camera in the large view",
		`(() => { const v = document.querySelector('.cams.big video.cam.live[data-stream$="-phone"]'); return !!v && v.getVideoPlaybackQuality().totalVideoFrames > 3; })()`, 20*time.Second)
	browsertest.Screenshot(t, inv, "console-video")
	// A flag to review: the candidate pastes.
	browsertest.Eval[bool](t, ctx, `(document.dispatchEvent(new ClipboardEvent('paste', {bubbles: true, cancelable: true})), true)`)
	time.Sleep(3 * time.Second)
	browsertest.Screenshot(t, ctx, "exam-camera")
	e.media.Close() // the recordings are finished, as when the exam ends
	if err := e.engine.Submit(context.Background(), mustOpen(t, e, cd)); err != nil {
		t.Fatal(err)
	}
	e.db.Take(&rec, rec.ID)
	if rec.State != "closed" || rec.Codecs != "vp8,opus" {
		t.Fatalf("recording %+v", rec)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_name", "-of", "csv=p=0", rec.Path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v %s", err, out)
	}
	lines := strings.Fields(string(out))
	dur, _ := strconv.ParseFloat(lines[len(lines)-1], 64)
	if !strings.Contains(string(out), "vp8") || !strings.Contains(string(out), "opus") || dur < 2 {
		t.Fatalf("recording: %s", out)
	}
	var phoneRec store.Recording
	if err := e.db.Where("attempt_id = ? AND device = ?", cd.attempt, "phone").Take(&phoneRec).Error; err != nil || phoneRec.State != "closed" || phoneRec.Codecs != "vp8" {
		t.Fatalf("phone recording %+v %v", phoneRec, err)
	}

	// A reviewer replays the attempt: clicking the flag seeks both videos
	// to a few seconds before it, and they play.
	rev := browsertest.New(t)
	browsertest.Run(t, rev, "reviewer opens the attempt",
		e.loginPage(e.reviewer),
		chromedp.WaitVisible("a[data-attempt]"), chromedp.Click("a[data-attempt]"),
		chromedp.WaitVisible(".tflag"))
	browsertest.Run(t, rev, "click the flag and play", chromedp.Click(".tflag"), chromedp.Click("#play"))
	browsertest.WaitTrue(t, rev, "both videos play at the flag",
		`(() => { const vs = [...document.querySelectorAll('video.replay')]; return vs.length === 2 && vs.every(v => !v.paused && v.currentTime > 0.5 && v.readyState >= 2); })()`, 20*time.Second)
	browsertest.Screenshot(t, rev, "review")
	browsertest.Run(t, rev, "decide invalid without a reason", chromedp.Click("#decide-invalid"), chromedp.WaitVisible("#review-msg .alert"))
	browsertest.Run(t, rev, "decide", chromedp.SendKeys("#review-reason", "粘贴外部内容"), chromedp.Click("#decide-invalid"), chromedp.WaitVisible("#decided"))
	if a := e.attempt(cd.attempt); a.Passed == nil || *a.Passed {
		t.Fatalf("an attempt ruled invalid passes: %+v", a)
	}
}

func mustOpen(t *testing.T, e *examEnv, cd cand) *exam.Handle {
	h, err := e.engine.Open(context.Background(), cd.id, cd.attempt)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A page whose camera falls silent while its connection still answers is
// released by the server after GoneAfter; the page notices its connection
// end and publishes again on the same socket, into a new recording.
func TestExamPagePublishesAgainAfterReleaseInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newExamEnv(t, "sqlite", 1)
	e.stop()
	e.goneAfter = 3 * time.Second
	e.startServer()
	cd := e.cands[0]
	ctx := startWatchedExam(t, e, cd)
	recordings := func() (open, closed int64) {
		e.db.Model(&store.Recording{}).Where("attempt_id = ? AND device = 'pc' AND state = 'open'", cd.attempt).Count(&open)
		e.db.Model(&store.Recording{}).Where("attempt_id = ? AND device = 'pc' AND state = 'closed'", cd.attempt).Count(&closed)
		return
	}
	waitFor := func(what string, ok func(open, closed int64) bool) {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if o, c := recordings(); ok(o, c) {
				return
			} else if time.Now().After(end) {
				t.Fatalf("%s: %d recordings open, %d closed", what, o, c)
			}
		}
	}
	waitFor("the camera is recorded", func(o, _ int64) bool { return o == 1 })
	// The page's camera stops sending; ICE goes on answering.
	browsertest.Eval[bool](t, ctx, `(window.__pcs.at(-1).getSenders().filter((s) => s.track?.kind === 'video').forEach((s) => s.replaceTrack(null)), true)`)
	waitFor("released and published again", func(o, c int64) bool { return c >= 1 && o == 1 })
	if n := browsertest.Eval[int](t, ctx, `window.__pcs.length`); n < 2 {
		t.Fatalf("the page made %d connections, want a new one after the release", n)
	}
}

// The exam's cap on the PC camera reaches the page (media_config), the
// page's sender carries it on the full layer, and the recording keeps
// under it: the fake camera sends about 400 kbit/s uncapped.
func TestCameraKeepsToItsCapInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe is not installed (apt-get install ffmpeg; .ci/run does it)")
	}
	e := newExamEnv(t, "sqlite", 1)
	if err := e.db.Model(&store.Exam{}).Where("id = ?", e.exam.ID).Update("policy", `{"pc_max_kbps":150}`).Error; err != nil {
		t.Fatal(err)
	}
	cd := e.cands[0]
	ctx := startWatchedExam(t, e, cd)
	browsertest.WaitTrue(t, ctx, "the camera is sent", `window.__pcs.some((pc) => pc.connectionState === 'connected')`, 20*time.Second)
	caps := browsertest.Eval[string](t, ctx, `JSON.stringify(window.__pcs.at(-1).getSenders().filter((s) => s.track?.kind === 'video')
  .flatMap((s) => s.getParameters().encodings.map((x) => [x.rid || '', x.maxBitrate])))`)
	if caps != `[["l",20000],["h",150000]]` {
		t.Fatalf("the camera's layers and caps: %s, want the full layer at the exam's 150 kbit/s", caps)
	}
	time.Sleep(12 * time.Second)
	e.media.Close() // the recording ends
	var rec store.Recording
	if err := e.db.Where("attempt_id = ? AND device = 'pc'", cd.attempt).Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	// The video's bitrate after the first 3 s (the encoder's ramp-up).
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,size", "-of", "csv=p=0", rec.Path).Output()
	if err != nil {
		t.Fatal(err)
	}
	var bytes, first, last float64
	for _, line := range strings.Fields(string(out)) {
		var pts, size float64
		if _, err := fmt.Sscanf(strings.Replace(line, ",", " ", 1), "%g %g", &pts, &size); err != nil || pts < 3 {
			continue
		}
		if first == 0 {
			first = pts
		}
		last, bytes = pts, bytes+size
	}
	kbps := bytes * 8 / (last - first) / 1000
	t.Logf("recorded video: %.0f kbit/s over %.1f s with a 150 kbit/s cap", kbps, last-first)
	if last-first < 5 || kbps > 150*1.1 {
		t.Fatalf("recorded video %.0f kbit/s over %.1f s: want at most the 150 kbit/s cap", kbps, last-first)
	}
}

// startWatchedExam opens the exam page in Chromium, its peer connections
// kept in window.__pcs (capturePCs), and starts the attempt.
func startWatchedExam(t *testing.T, e *examEnv, cd cand) context.Context {
	capture := func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: capturePCs})
		return err
	}
	return browsertest.Start(t, "candidate starts", nil, capture,
		e.loginPage(cd),
		chromedp.WaitVisible("a[data-attempt]"), chromedp.Click("a[data-attempt]"),
		chromedp.WaitEnabled("#start"), chromedp.Click("#start"), chromedp.WaitVisible("#selfview"))
}
