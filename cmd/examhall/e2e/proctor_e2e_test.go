package e2e

import (
	"context"
	"fmt"
	"strings"
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
		chromedp.WaitEnabled("#start"), chromedp.Click("#start"), chromedp.WaitVisible(".option"))
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
// The whole journey before the exam, in the browser: device check (with a
// test publish), rules, identity photo, phone pairing (a second browser),
// set-up checklist, the lobby; the invigilator sees the candidate's
// readiness and photo, refuses with a reason the candidate sees, admits,
// and the first question appears.
func TestJourneyAndAdmissionInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newExamEnv(t, "sqlite", 1)
	e.db.Model(&store.ExamSession{}).Where("id = ?", e.session).Update("admission_mode", "manual")
	cd := e.cands[0]
	cand, inv := browsertest.New(t), browsertest.New(t)
	wait := func(ctx context.Context, what, expr string) { browsertest.WaitTrue(t, ctx, what, expr, 45*time.Second) }
	lobbyState := func(state string) string {
		return `document.querySelector('#lobby-state')?.dataset.state === '` + state + `'`
	}
	browsertest.Run(t, cand, "candidate opens the lobby",
		e.loginPage(cd),
		chromedp.WaitVisible("a[data-attempt]"), chromedp.Click("a[data-attempt]"),
		chromedp.WaitVisible("#journey"), chromedp.WaitVisible("#go-check"))
	if !browsertest.Eval[bool](t, cand, `document.querySelector('#start').disabled`) {
		t.Fatal("Start is enabled before admission")
	}
	browsertest.Run(t, cand, "device check", chromedp.Click("#go-check"), chromedp.WaitVisible("#check-preview"))
	wait(cand, "the check passes, WebRTC included",
		`document.querySelector('#check-verdict').dataset.passed === 'true' && document.querySelector('[data-check="webrtc"]').className === 'passed'`)
	browsertest.Run(t, cand, "back to the lobby, accept the rules",
		chromedp.Click("#back-lobby"), chromedp.WaitVisible("#rules"),
		chromedp.Click("#rules-ok"), chromedp.Click("#rules-accept"))
	browsertest.Run(t, cand, "identity photo",
		chromedp.WaitVisible("#identity-take"), chromedp.Sleep(500*time.Millisecond), chromedp.Click("#identity-take"),
		chromedp.WaitVisible("#identity-use"), chromedp.Click("#identity-use"))
	browsertest.Run(t, cand, "pair the phone", chromedp.WaitVisible("#lobby-pair"), chromedp.Click("#lobby-pair"), chromedp.WaitVisible("#pair-url"))
	phone := browsertest.New(t)
	browsertest.Run(t, phone, "the phone opens the link", chromedp.Navigate(browsertest.Eval[string](t, cand, `document.querySelector('#pair-url').textContent`)))
	wait(cand, "the set-up step opens once the server sees the phone", `!!document.querySelector('#setup-items')`)
	browsertest.Run(t, cand, "close the pairing dialog", chromedp.Click("#pairdlg .confirm-actions button"))
	browsertest.Screenshot(t, cand, "journey-setup")
	browsertest.Eval[bool](t, cand, `(document.querySelectorAll('#setup-items input').forEach((i) => { i.checked = true; }), true)`)
	browsertest.Run(t, cand, "confirm the set-up checklist", chromedp.Click("#setup-confirm"))
	wait(cand, "ready, waiting for the invigilator", lobbyState("ready"))

	if code, out := call(t, e, e.login(e.admin), "PUT", fmt.Sprintf("/api/admin/users/%d/photo", cd.id), jpegOf(t, 300, 400)); code != 200 {
		t.Fatalf("filing the registered photo: %d %s", code, out)
	}
	browsertest.Run(t, inv, "invigilator sees the candidate ready, with the photo",
		e.loginPage(e.invA), chromedp.WaitVisible("#pre"))
	wait(inv, "one ready, the registered photo beside the identity still",
		`document.querySelector('[data-count="ready"]')?.textContent.includes('1') && [...document.querySelectorAll('#pre img.still')].filter((i) => i.naturalWidth > 0).length === 2`)
	browsertest.Screenshot(t, inv, "console-pre-exam")
	browsertest.Run(t, inv, "refuse with a reason",
		chromedp.Click(`#pre [data-pre] button:last-child`), chromedp.WaitVisible("#refuse-reason"),
		chromedp.SendKeys("#refuse-reason", "身份证照片看不清"), chromedp.Click("#refuse"))
	wait(cand, "the candidate sees the reason", lobbyState("refused")+` && document.querySelector('#lobby-state').textContent.includes('身份证照片看不清')`)
	browsertest.Run(t, inv, "admit after all", chromedp.Click("#admit"))
	wait(cand, "admitted", lobbyState("admitted")+` && !document.querySelector('#start').disabled`)
	browsertest.Run(t, cand, "start", chromedp.Click("#start"), chromedp.WaitVisible(".option"))
	var actions []string
	e.db.Model(&store.AuditEvent{}).Where("actor_id = ? AND action LIKE ?", e.invA.id, "candidate_%").Order("id").Pluck("action", &actions)
	if strings.Join(actions, ",") != "candidate_refused,candidate_admitted" {
		t.Fatalf("audit %v", actions)
	}
}
