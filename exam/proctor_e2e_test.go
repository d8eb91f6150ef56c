package exam_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/examhall/examhall/frontend/browsertest"
	"github.com/examhall/examhall/store"
)

// A candidate and an invigilator in two Chromium browsers: the candidate
// leaves the exam page and the console shows the flag with its reason; the
// invigilator messages the candidate, who acknowledges, and the invigilator
// sees it; the invigilator ends the attempt and the candidate's page says so.
func TestProctoringInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newExamEnv(t, "sqlite", 1)
	cd := e.cands[0]
	cand := browsertest.New(t)
	inv := browsertest.New(t)
	wait := func(ctx context.Context, what, expr string) { browsertest.WaitTrue(t, ctx, what, expr, 20*time.Second) }

	browsertest.Run(t, cand, "candidate starts",
		e.loginPage(cd),
		chromedp.WaitVisible("a[data-attempt]"), chromedp.Click("a[data-attempt]"),
		chromedp.WaitVisible("#start"), chromedp.Click("#start"), chromedp.WaitVisible(".option"))
	browsertest.Run(t, inv, "invigilator opens the console",
		e.loginPage(e.invA),
		chromedp.WaitVisible(".tile[data-attempt]"))

	// The candidate leaves the exam: the browser window is minimised for
	// 4 s, so the page is hidden.
	win, err := chromedp.Call(cand, browser.GetWindowForTarget, browser.GetWindowForTargetParams{})
	if err != nil {
		t.Fatal(err)
	}
	setState := func(s browser.WindowState) {
		if _, err := chromedp.Call(cand, browser.SetWindowBounds, browser.SetWindowBoundsParams{WindowID: win.WindowID, Bounds: &browser.Bounds{WindowState: s}}); err != nil {
			t.Fatal(err)
		}
	}
	setState(browser.WindowStateMinimized)
	wait(cand, "exam page hidden", `document.hidden`)
	time.Sleep(4 * time.Second)
	setState(browser.WindowStateNormal)
	wait(inv, "the flag on the console", `[...document.querySelectorAll('#feed li')].some(li => li.textContent.includes('离开考试页面'))`)
	wait(cand, "the candidate is told", `document.querySelector('#banner') && !document.querySelector('#banner').hidden && document.querySelector('#banner').textContent.includes('监考老师可以看到')`)
	browsertest.Screenshot(t, inv, "console-flag")

	browsertest.Run(t, inv, "message the candidate",
		chromedp.Click(".tile[data-attempt]"), chromedp.WaitVisible("#msg-body"),
		chromedp.SendKeys("#msg-body", "请保持在考试页面"), chromedp.Click("#send-message"), chromedp.WaitVisible(".ackstate"))
	wait(cand, "the message modal", `document.querySelector('dialog.proctor-msg[open]')?.textContent.includes('请保持在考试页面')`)
	browsertest.Screenshot(t, cand, "candidate-message")
	browsertest.Run(t, cand, "acknowledge", chromedp.Click("dialog.proctor-msg[open] button"))
	wait(inv, "the acknowledgement", `document.querySelector('.ackstate').textContent.includes('考生已确认')`)

	browsertest.Eval[bool](t, inv, `(window.confirm = () => true, true)`)
	browsertest.Run(t, inv, "end the attempt",
		chromedp.SendKeys("#end-reason", "多次离开考试页面"), chromedp.Click("#end-attempt"))
	wait(cand, "the candidate's page says so", `document.querySelector('#ended')?.textContent.includes('多次离开考试页面')`)
	waitStatus(t, e, cd.attempt, "terminated")
}

// In a session with manual admission, the candidate waits; the invigilator
// admits from the console (anyway, since the steps are not all done), and
// the candidate's Start then works.
func TestAdmissionFromTheConsoleInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newExamEnv(t, "sqlite", 1)
	e.db.Model(&store.ExamSession{}).Where("id = ?", e.session).Update("admission_mode", "manual")
	cd := e.cands[0]
	cand, inv := browsertest.New(t), browsertest.New(t)
	wait := func(ctx context.Context, what, expr string) { browsertest.WaitTrue(t, ctx, what, expr, 20*time.Second) }
	browsertest.Run(t, cand, "candidate waits",
		e.loginPage(cd),
		chromedp.WaitVisible("a[data-attempt]"), chromedp.Click("a[data-attempt]"),
		chromedp.WaitVisible("#start"), chromedp.Click("#start"))
	wait(cand, "not admitted yet", `document.querySelector('#banner').textContent.includes('尚未允许您入场')`)
	browsertest.Run(t, inv, "invigilator admits",
		e.loginPage(e.invA),
		chromedp.WaitVisible(".tile[data-attempt]"), chromedp.Click(".tile[data-attempt]"),
		chromedp.WaitVisible("#admit"), chromedp.Click("#admit"), chromedp.WaitVisible("#admit-force"), chromedp.Click("#admit-force"))
	wait(cand, "told they are admitted", `document.querySelector('#banner').textContent.includes('已允许您入场')`)
	browsertest.Run(t, cand, "start", chromedp.Click("#start"), chromedp.WaitVisible(".option"))
}
