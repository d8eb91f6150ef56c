package e2e

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/examhall/examhall/frontend/browsertest"
	"github.com/examhall/examhall/store"
)

// The device check in Chromium with a fake camera and microphone passes
// and is stored with the attempt; the same page under a spoofed Safari user
// agent is refused with its fix text.
func TestDeviceCheckInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newExamEnv(t, "sqlite", 2)
	check := func(ua string, cd cand) (string, bool) {
		var opts []chromedp.ExecAllocatorOption
		if ua != "" {
			opts = append(opts, chromedp.UserAgent(ua))
		}
		ctx := browsertest.New(t, opts...)
		browsertest.Run(t, ctx, "log in and open the check",
			e.loginPage(cd),
			chromedp.WaitVisible("a[data-check]"), chromedp.Click("a[data-check]"), chromedp.WaitVisible("#check-preview"))
		browsertest.WaitTrue(t, ctx, "the verdict", `document.querySelector('#check-verdict').dataset.passed !== undefined`, 30*time.Second)
		browsertest.Screenshot(t, ctx, "device-check")
		// The upload is judged against the exam's cameras at their caps:
		// (300 + 20) + (200 + 20) kbit/s of video and 32 of microphone.
		if need := browsertest.Eval[string](t, ctx, `document.querySelector('[data-need]')?.dataset.need`); need != "572" {
			t.Fatalf("the check judges the upload against %q kbit/s, want the exam's 572", need)
		}
		return browsertest.Eval[string](t, ctx, `document.querySelector('[data-check="browser"]').className + ' ' + document.querySelector('[data-check="browser"]').textContent`),
			browsertest.Eval[string](t, ctx, `document.querySelector('#check-verdict').dataset.passed`) == "true"
	}
	browserRow, passed := check("", e.cands[0])
	if !passed || browserRow[:6] != "passed" {
		t.Fatalf("Chromium's check: %q passed=%v", browserRow, passed)
	}
	var step store.ReadinessStep
	if err := e.db.Where("attempt_id = ? AND step = ?", e.cands[0].attempt, "device_check").Take(&step).Error; err != nil {
		t.Fatalf("the passed check was not stored: %v", err)
	}
	safari := "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15"
	browserRow, passed = check(safari, e.cands[1])
	if passed || browserRow[:6] != "failed" || !contains(browserRow, "请使用谷歌 Chrome 或 Mozilla Firefox") || !contains(browserRow, "Use Google Chrome or Mozilla Firefox") {
		t.Fatalf("Safari's check: %q passed=%v", browserRow, passed)
	}
	var n int64
	e.db.Model(&store.ReadinessStep{}).Where("attempt_id = ?", e.cands[1].attempt).Count(&n)
	if n != 0 {
		t.Fatal("a failed check counted as done")
	}
}
