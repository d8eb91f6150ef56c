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
