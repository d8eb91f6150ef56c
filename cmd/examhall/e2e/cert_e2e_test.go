package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/frontend/browsertest"
	"github.com/examhall/examhall/store"
)

// The whole certificate path in Chromium: a candidate registers, an admin
// marks the fee paid and seats her, she passes the theory exam on the exam
// page and uploads her work-improvement plan, the admin forms a panel of
// three, the members score it (the first in the browser), the certificate
// is issued, printed and verified on the public page.
func TestCertificatePathInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newCertEnv(t, "{}")
	wait := 20 * time.Second
	cb, ab, rb := browsertest.New(t), browsertest.New(t), browsertest.New(t)

	// The candidate registers.
	browsertest.Run(t, cb, "candidate logs in and registers",
		e.loginPage(e.alice), chromedp.WaitVisible("#cert-path"),
		chromedp.Navigate(e.srv.URL+"/register"), chromedp.WaitVisible("#reg-name"),
		chromedp.SetValue("#reg-level", strconv.FormatInt(e.levels["intermediate"], 10)),
		chromedp.SendKeys("#reg-name", "王小明"), chromedp.SendKeys("#reg-id", aliceID),
		chromedp.SetValue("#reg-education", "bachelor"), chromedp.SendKeys("#reg-hours", "80"),
		chromedp.SendKeys("#reg-org", "北京培训中心"),
		chromedp.Click("#register button[type=submit]"),
		chromedp.WaitVisible("[data-registration]"))
	browsertest.WaitTrue(t, cb, "the fee is owed", `document.querySelector('[data-fee]').textContent.includes('未缴费')`, wait)
	browsertest.Screenshot(t, cb, "cert-registered")

	// The admin marks the fee paid and seats her in the theory session.
	browsertest.Run(t, ab, "admin marks the fee paid",
		e.loginPage(e.admin), chromedp.WaitVisible("#cert-admin"),
		chromedp.Navigate(e.srv.URL+"/admin/programme"), chromedp.WaitVisible("[data-pay]"),
		chromedp.SendKeys("[data-receipt]", "RCPT-2026-001"), chromedp.Click("[data-pay]"))
	browsertest.WaitTrue(t, ab, "fee paid", `!document.querySelector('[data-pay]') && !!document.querySelector('[data-seat]')`, wait)
	browsertest.Run(t, ab, "admin seats her",
		chromedp.SetValue("[data-session-for]", strconv.FormatInt(e.session, 10)), chromedp.Click("[data-seat]"))
	browsertest.WaitTrue(t, ab, "seated", `!document.querySelector('[data-seat]')`, wait)

	// She sits the theory exam in the browser and answers every question
	// with its key (found by the question's stem), then submits.
	reg := e.path(e.login(e.alice))[0]
	if reg.OwedCents != 0 {
		t.Fatalf("the fee is still owed: %+v", reg)
	}
	keyOf := map[string]string{}
	var bank []store.Question
	e.db.Find(&bank)
	for _, q := range bank {
		keyOf[q.Stem] = q.Answer
	}
	browsertest.Run(t, cb, "candidate enters the exam from her path",
		chromedp.Navigate(e.srv.URL+"/path"), chromedp.WaitVisible("a[data-exam]"), chromedp.Click("a[data-exam]"),
		chromedp.WaitVisible("#start"), chromedp.Click("#start"), chromedp.WaitVisible(".option"))
	n := browsertest.Eval[int](t, cb, `document.querySelectorAll('#grid .cell').length`)
	for i := range n {
		stem := browsertest.Eval[string](t, cb, `document.querySelector('#stem').textContent`)
		var key []int
		if err := json.Unmarshal([]byte(keyOf[stem]), &key); err != nil || len(key) == 0 {
			t.Fatalf("question %d %q: no key", i+1, stem)
		}
		for _, k := range key {
			browsertest.Run(t, cb, "answer", chromedp.Click(fmt.Sprintf(`.option[data-option="%d"]`, k)))
		}
		if i < n-1 {
			browsertest.Run(t, cb, "next question", chromedp.KeyEvent(kb.ArrowRight))
			browsertest.WaitTrue(t, cb, "next question shown", fmt.Sprintf(`document.querySelector('#stem').textContent !== %q`, stem), wait)
		}
	}
	browsertest.WaitTrue(t, cb, "all answers saved", fmt.Sprintf(`document.querySelector('#save').classList.contains('ok') && document.querySelectorAll("#grid .cell.answered").length === %d`, n), wait)
	browsertest.Run(t, cb, "submit the exam", chromedp.Click("#submit"), chromedp.WaitVisible("#confirm-yes"), chromedp.Click("#confirm-yes"), chromedp.WaitVisible("#ended"))
	attempt := reg.Components[0].Sittings[0].AttemptID
	waitStatus(t, e.examEnv, attempt, exam.StatusSubmitted)
	if a := e.attempt(attempt); a.Score == nil || *a.Score != 100 {
		t.Fatalf("theory score %v, want 100", a.Score)
	}

	// She uploads her plan from the path page.
	plan := filepath.Join(t.TempDir(), "改进方案.pdf")
	os.WriteFile(plan, []byte("%PDF-1.7\n% a work-improvement plan\n"), 0o644)
	browsertest.Run(t, cb, "candidate sees the theory result",
		chromedp.Navigate(e.srv.URL+"/path"), chromedp.WaitVisible("input[data-upload]"))
	browsertest.WaitTrue(t, cb, "theory passed", `document.querySelector('[data-state=theory]').textContent.includes('合格')`, wait)
	browsertest.Run(t, cb, "candidate uploads the plan",
		chromedp.SetUploadFiles("input[data-upload]", []string{plan}), chromedp.Click("[data-upload-button]"))
	browsertest.WaitTrue(t, cb, "plan uploaded", `document.querySelector('a[href$="/document"]')?.textContent === '改进方案.pdf'`, wait)
	browsertest.Screenshot(t, cb, "cert-plan-uploaded")

	// The admin forms a panel of three.
	browsertest.Run(t, ab, "admin opens the panel form", chromedp.Reload(), chromedp.WaitVisible("[data-form-panel]"))
	for _, r := range e.reviewers {
		browsertest.Run(t, ab, "choose a member", chromedp.Click(fmt.Sprintf(`[data-panel-form] input[data-member="%d"]`, r.id)))
	}
	browsertest.Run(t, ab, "form the panel", chromedp.Click("[data-form-panel]"))
	browsertest.WaitTrue(t, ab, "panel formed", `document.body.textContent.includes('0 / 3')`, wait)
	browsertest.Screenshot(t, ab, "cert-admin")

	// The first member scores in the browser and sees no other score; the
	// two others score; then all three show.
	sitting := reg.Components[1].Sittings[0].ID
	browsertest.Run(t, rb, "a panel member scores",
		e.loginPage(e.reviewers[0]), chromedp.WaitVisible("[data-score-form]"),
		chromedp.SendKeys("[data-score-input]", "88"), chromedp.SendKeys("[data-comment]", "方案完整，可行性较好"),
		chromedp.Click("[data-score-form] button[type=submit]"))
	if where := browsertest.Eval[string](t, rb, `location.pathname`); where != "/panel" {
		t.Fatalf("a panel member lands on %s, want /panel", where)
	}
	browsertest.WaitTrue(t, rb, "own score shown, others hidden", `!!document.querySelector('[data-mine]') && !document.querySelector('[data-scores]')`, wait)
	var first store.PanelSeat
	e.db.Where("user_id = ? AND scored_at IS NOT NULL", e.reviewers[0].id).Take(&first)
	if first.Comment != "方案完整，可行性较好" {
		t.Fatalf("the comment was stored as %q", first.Comment)
	}
	for i, s := range []int{90, 84} {
		code, b := call(t, e.examEnv, e.login(e.reviewers[i+1]), "POST", fmt.Sprintf("/api/panel/%d/score", sitting), map[string]any{"score": s, "comment": "ok"})
		expect(t, "score", code, b, 200, "")
	}
	browsertest.Run(t, rb, "all scores shown", chromedp.Reload(), chromedp.WaitVisible("[data-scores]"))
	if got := browsertest.Eval[string](t, rb, `document.querySelector('[data-result]').textContent`); !strings.Contains(got, "87.33") {
		t.Fatalf("panel result: %q", got)
	}
	browsertest.Screenshot(t, rb, "cert-panel")

	// The certificate is issued; its page prints with a QR code to the
	// public check, which says it is valid.
	browsertest.Run(t, cb, "candidate opens the certificate",
		chromedp.Navigate(e.srv.URL+"/path"), chromedp.WaitVisible("#open-certificate"),
		chromedp.Click("#open-certificate"), chromedp.WaitVisible("#certificate"))
	browsertest.WaitTrue(t, cb, "QR code drawn", `document.querySelector('#qr').naturalWidth > 0`, wait)
	number := browsertest.Eval[string](t, cb, `document.querySelector('#number').textContent`)
	verifyURL := browsertest.Eval[string](t, cb, `document.querySelector('.cert-qr .mono').textContent`)
	browsertest.Screenshot(t, cb, "cert-certificate")
	if !strings.Contains(verifyURL, "number="+number) {
		t.Fatalf("the QR link %q does not carry the number %s", verifyURL, number)
	}

	browsertest.Run(t, cb, "her home page shows the path and the certificate",
		chromedp.Navigate(e.srv.URL+"/candidate"), chromedp.WaitVisible("#certificate-box"))
	browsertest.Screenshot(t, cb, "cert-home")

	pb := browsertest.New(t) // a stranger's browser, not logged in
	browsertest.Run(t, pb, "the QR link verifies", chromedp.Navigate(verifyURL), chromedp.WaitVisible("#v-status"))
	if got := browsertest.Eval[string](t, pb, `document.querySelector('#v-status').textContent`); !strings.Contains(got, "有效") {
		t.Fatalf("status %q", got)
	}
	browsertest.Run(t, pb, "verify by number and name",
		chromedp.Navigate(e.srv.URL+"/verify"), chromedp.WaitVisible("#v-number"),
		chromedp.SendKeys("#v-number", number), chromedp.SendKeys("#v-name", "王小明"),
		chromedp.Click("#verify button[type=submit]"), chromedp.WaitVisible("#v-status"))
	if got := browsertest.Eval[string](t, pb, `document.querySelector('#v-holder').textContent`); got != "王*明" {
		t.Fatalf("holder shown as %q", got)
	}
	browsertest.Screenshot(t, pb, "cert-verified")
	browsertest.Run(t, pb, "a wrong name finds nothing",
		chromedp.SetValue("#v-name", "王大明"), chromedp.Click("#verify button[type=submit]"), chromedp.WaitVisible(`[data-verify="none"]`))

	// A review later rules her theory attempt invalid: the admin page lists
	// the certificate as needing attention, and the admin revokes it there.
	e.db.Create(&store.AttemptReview{AttemptID: reg.Components[0].Sittings[0].AttemptID, Decision: "invalid", Reason: "第二人入镜",
		DecidedBy: e.reviewer.id, DecidedAt: e.clock.now()})
	browsertest.Run(t, ab, "the admin sees the certificate needs attention",
		chromedp.Navigate(e.srv.URL+"/admin/programme"), chromedp.WaitVisible(fmt.Sprintf(`[data-attention-number=%q]`, number)))
	browsertest.Screenshot(t, ab, "cert-attention")
	browsertest.Run(t, ab, "the admin revokes it",
		chromedp.SendKeys(fmt.Sprintf(`[data-attention-reason=%q]`, number), "理论考试被认定无效"),
		chromedp.Click(fmt.Sprintf(`[data-attention-number=%q] button`, number)))
	browsertest.WaitTrue(t, ab, "the list is empty", `!document.querySelector('[data-attention]') && !!document.querySelector('[data-registration]')`, wait)
}

// After a failed retake the path says the candidate must register again and
// links to the registration page.
func TestRegisterAgainInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newCertEnv(t, "{}")
	ctx := t.Context()
	reg, err := e.cert.Register(ctx, e.alice.id, e.alice.id, e.levels["intermediate"], certify.Applicant{Name: "王小明", IDNumber: aliceID, Education: "bachelor", TrainingHours: 80})
	if err != nil {
		t.Fatal(err)
	}
	var fee store.Fee
	e.db.Where("registration_id = ?", reg.ID).Take(&fee)
	if err := e.cert.MarkPaid(ctx, e.admin.id, fee.ID, "", "R1"); err != nil {
		t.Fatal(err)
	}
	fail := func(session int64) {
		t.Helper()
		seat, err := e.cert.Seat(ctx, e.admin.id, reg.ID, session)
		if err != nil {
			t.Fatal(err)
		}
		e.db.Model(&store.Attempt{}).Where("seat_id = ?", seat.ID).Updates(map[string]any{"status": exam.StatusSubmitted, "score": 40, "passed": false, "ended_at": e.clock.now()})
		if _, err := e.cert.Settle(ctx, reg.ID); err != nil {
			t.Fatal(err)
		}
	}
	fail(e.session)
	st, err := e.cert.RequestRetake(ctx, e.alice.id, reg.ID, "theory", e.alice.id)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cert.MarkPaid(ctx, e.admin.id, *st.FeeID, "", "R2"); err != nil {
		t.Fatal(err)
	}
	now := e.clock.now()
	next, err := e.engine.CreateSession(ctx, exam.SessionSpec{ExamID: e.exam.ID, Code: "retake", Title: "补考", StartsAt: now,
		AdmissionEndsAt: now.Add(time.Hour), EndsAt: now.Add(3 * time.Hour), AdmissionMode: "open"}, e.admin.id)
	if err != nil {
		t.Fatal(err)
	}
	fail(next)

	cb := browsertest.New(t)
	// The home page renders the path link after loading it, possibly twice:
	// click whichever element is there once it is.
	browsertest.Run(t, cb, "the home page links the path", e.loginPage(e.alice), chromedp.WaitVisible("#cert-path"))
	browsertest.WaitTrue(t, cb, "the path opens", `(document.querySelector('#cert-path')?.click(), location.pathname === '/path' || !!document.querySelector('#register-again'))`, 20*time.Second)
	browsertest.Run(t, cb, "the path says to register again", chromedp.WaitVisible("#register-again"))
	if got := browsertest.Eval[string](t, cb, `document.querySelector('#register-again').textContent`); !strings.Contains(got, "重新报名") {
		t.Fatalf("notice %q", got)
	}
	browsertest.Screenshot(t, cb, "cert-register-again")
	browsertest.Run(t, cb, "its link opens the registration", chromedp.Click("#register-again a"), chromedp.WaitVisible("#reg-name"))
}

// The rules screen in Chromium: a bad value is refused naming the rule and
// nothing changes; a pass mark, a holiday and a level's fee are saved.
func TestCertRulesScreenInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newCertEnv(t, "{}")
	wait := 20 * time.Second
	ab := browsertest.New(t)
	prog := e.exam.ProgrammeID
	browsertest.Run(t, ab, "admin opens the rules",
		e.loginPage(e.admin), chromedp.WaitVisible("#cert-admin"),
		chromedp.Navigate(e.srv.URL+"/admin/programme"), chromedp.WaitVisible(`[data-rule-input="pass_mark"]`),
		chromedp.SetValue(`[data-rule-input="pass_mark"]`, "120"), chromedp.SetValue(`[data-rule-input="min_panel_size"]`, "4"),
		chromedp.Click(fmt.Sprintf(`[data-save-rules="%d"]`, prog)), chromedp.WaitVisible(`[data-bad-rule="pass_mark"]`))
	if got := browsertest.Eval[string](t, ab, `document.querySelector('[data-bad-rule="min_panel_size"]').textContent`); !strings.Contains(got, "评审小组最少人数") {
		t.Fatalf("the refusal does not name the rule: %q", got)
	}
	browsertest.Screenshot(t, ab, "cert-rules-refused")
	var p store.Programme
	e.db.Take(&p, prog)
	if p.Rules != "{}" {
		t.Fatalf("a refused change was stored: %s", p.Rules)
	}
	browsertest.Run(t, ab, "admin sets a pass mark and a holiday",
		chromedp.SetValue(`[data-rule-input="pass_mark"]`, "85"), chromedp.SetValue(`[data-rule-input="min_panel_size"]`, "5"),
		chromedp.SetValue(`[data-new-day="holidays"]`, "2026-10-01"), chromedp.Click(`[data-add-day="holidays"]`),
		chromedp.WaitVisible(`[data-calendar="holidays"] [data-day="2026-10-01"]`),
		chromedp.Click(fmt.Sprintf(`[data-save-rules="%d"]`, prog)))
	browsertest.WaitTrue(t, ab, "saved", `!!document.querySelector('.alert.ok')`, wait)
	browsertest.Screenshot(t, ab, "cert-rules-saved")
	pol, err := e.cert.Rules(t.Context(), prog)
	if err != nil || pol.Rules.PassMark != 85 || pol.Rules.MinPanelSize != 5 || strings.Join(pol.Rules.Holidays, ",") != "2026-10-01" || pol.Rules.RetakeFeeCents != 200_00 {
		t.Fatalf("rules after saving: %+v %v", pol.Rules, err)
	}
	junior := e.levels["junior"]
	browsertest.Run(t, ab, "admin changes the junior fee",
		chromedp.SetValue(fmt.Sprintf(`[data-level-fee="%d"]`, junior), "850.50"), chromedp.Click(fmt.Sprintf(`[data-save-level="%d"]`, junior)))
	browsertest.WaitTrue(t, ab, "level saved", fmt.Sprintf(`document.querySelector('[data-level-fee="%d"]').value === "850.50"`, junior), wait)
	var l store.Level
	e.db.Take(&l, junior)
	for range 50 {
		if e.db.Take(&l, junior); l.FeeCents == 850_50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if l.FeeCents != 850_50 {
		t.Fatalf("junior fee %d", l.FeeCents)
	}
}

// Sign-up in Chromium: from the login page's link to the registration
// form, the name and ID number carried over.
func TestCertSignUpInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newCertEnv(t, "{}")
	id := idNumber("32010219960815234")
	b := browsertest.New(t)
	browsertest.Run(t, b, "sign up from the login page",
		chromedp.Navigate(e.srv.URL+"/login"), chromedp.WaitVisible("#signup-link"), chromedp.Click("#signup-link"),
		chromedp.WaitVisible("#su-name"), chromedp.SendKeys("#su-name", "陈一"), chromedp.SendKeys("#su-id", id),
		chromedp.SendKeys("#su-password", "correct horse battery"), chromedp.SendKeys("#su-password2", "correct horse battery"),
		chromedp.Click("#signup button[type=submit]"), chromedp.WaitVisible("#reg-name"))
	browsertest.WaitTrue(t, b, "the form is filled in", fmt.Sprintf(`document.querySelector('#reg-id').value === %q && document.querySelector('#reg-name').value === "陈一"`, id), 10*time.Second)
	browsertest.Screenshot(t, b, "cert-signed-up")

	// The same ID number again, in another browser: log in instead.
	b2 := browsertest.New(t)
	browsertest.Run(t, b2, "sign up twice",
		chromedp.Navigate(e.srv.URL+"/signup"), chromedp.WaitVisible("#su-name"),
		chromedp.SendKeys("#su-name", "陈一"), chromedp.SendKeys("#su-id", id),
		chromedp.SendKeys("#su-password", "another long password"), chromedp.SendKeys("#su-password2", "another long password"),
		chromedp.Click("#signup button[type=submit]"), chromedp.WaitVisible("#login-instead"))
	browsertest.Screenshot(t, b2, "cert-signup-twice")
	browsertest.Run(t, b2, "the link goes to the login", chromedp.Click("#login-instead a"), chromedp.WaitVisible("#username"))
}
