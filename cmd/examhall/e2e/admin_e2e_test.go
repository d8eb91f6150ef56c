package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/examhall/examhall/frontend/browsertest"
	"github.com/examhall/examhall/store"
)

// The admin page in the browser: a session's admission mode is changed,
// and a candidate's registered photo is filed from the session's results.
func TestAdminSessionsInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newExamEnv(t, "sqlite", 1)
	photo := filepath.Join(t.TempDir(), "photo.jpg")
	if err := os.WriteFile(photo, jpegOf(t, 300, 400), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t)
	browsertest.Run(t, ctx, "admin changes the admission mode",
		e.loginPage(e.admin), chromedp.WaitVisible("select[data-mode]"),
		chromedp.SetValue("select[data-mode]", "manual"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('select[data-mode]').dispatchEvent(new Event('change'))`))
	mode := func() string {
		var s store.ExamSession
		e.db.Take(&s, e.session)
		return s.AdmissionMode
	}
	for i := 0; i < 50 && mode() != "manual"; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if m := mode(); m != "manual" {
		t.Fatalf("admission mode %q after the admin chose manual", m)
	}
	browsertest.Run(t, ctx, "admin files a registered photo",
		chromedp.Click("table button:nth-of-type(2)"), chromedp.WaitVisible("input[data-photo]"),
		chromedp.SetUploadFiles("input[data-photo]", []string{photo}))
	browsertest.WaitTrue(t, ctx, "the page says it is on file", `document.querySelector('input[data-photo]').parentElement.textContent.includes('已登记')`, 10*time.Second)
	var u store.User
	e.db.Take(&u, e.cands[0].id)
	if u.Photo == "" {
		t.Fatal("no photo on file")
	}
	browsertest.WaitTrue(t, ctx, "the session shows its recordings' size", `document.querySelector('[data-storage]').textContent.includes('GB')`, 10*time.Second)
	browsertest.WaitTrue(t, ctx, "the page lists this node as live", `[...document.querySelectorAll('#cluster tr')].some((r) => r.textContent.startsWith('n1') && r.textContent.includes('运行中'))`, 10*time.Second)
}

// The admin sends a session's seat messages from the page (confirming the
// dialog) and follows them to sent; finds the candidate's messages, sets
// their mobile and sends one again.
func TestAdminNotificationsInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e, smtp := newMailEnv(t, "sqlite", 2)
	ctx := browsertest.New(t)
	browsertest.Run(t, ctx, "admin sends the seat messages, saying yes to the page's question",
		e.loginPage(e.admin), chromedp.WaitVisible("button[data-notify]"),
		chromedp.Evaluate[chromedp.Void](`window.confirm = (q) => { window.asked = q; return true; }`),
		chromedp.Click("button[data-notify]"))
	browsertest.WaitTrue(t, ctx, "the page asked first", `(window.asked || '').includes('2 个座位')`, 10*time.Second)
	browsertest.WaitTrue(t, ctx, "the page shows them sent", `[...document.querySelectorAll('[data-batch]')].some((el) => el.textContent.includes('已发送 2'))`, 20*time.Second)
	awaitMails(t, smtp, 2)
	browsertest.Run(t, ctx, "admin finds the candidate's messages",
		chromedp.SetValue("#messages-user", e.cands[0].ticket), chromedp.Click("#messages-find"),
		chromedp.WaitVisible("#messages tr[data-state=sent]"),
		chromedp.SetValue("input[data-contact=mobile]", "13800138000"), chromedp.Click("#contact-save"))
	browsertest.WaitTrue(t, ctx, "the contact is saved", `document.body.textContent.includes('联系方式已保存')`, 10*time.Second)
	if u, _ := e.db.UserByID(t.Context(), e.cands[0].id); u.Mobile != "13800138000" {
		t.Fatalf("mobile %q", u.Mobile)
	}
	browsertest.Run(t, ctx, "admin sends it again", chromedp.Click("#messages tr[data-state=sent] button"))
	browsertest.WaitTrue(t, ctx, "it is sent again", `document.querySelectorAll('#messages tr[data-state]').length === 1`, 10*time.Second)
	awaitMails(t, smtp, 3)
}
