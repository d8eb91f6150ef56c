package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/http/cookiejar"
	"net/mail"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/accounts"
	"github.com/examhall/examhall/exam/notify"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// testBounceToken is the envs' --bounce-token.
const testBounceToken = "bounce-token-of-the-tests"

// newMailEnv is an env whose notifications go to a real SMTP server on
// loopback, and whose candidates have mail addresses.
func newMailEnv(t *testing.T, kind string, candidates int) (*examEnv, *storetest.SMTPServer) {
	smtp := storetest.NewSMTP(t)
	e := newExamEnv(t, kind, candidates)
	e.stop()
	mailer, err := notify.NewSMTP(smtp.URL(), "")
	if err != nil {
		t.Fatal(err)
	}
	e.notify = notify.Config{Mail: mailer, Poll: 20 * time.Millisecond, Backoff: 100 * time.Millisecond, Rate: 200}
	e.startServer()
	for i, c := range e.cands {
		if err := accounts.SetContact(t.Context(), e.db, e.admin.id, c.id, fmt.Sprintf("cand%d@examhall.test", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	return e, smtp
}

// mailParts are a mail's plain text and its calendar attachment, decoded.
func mailParts(t *testing.T, m *mail.Message) (text, ics string) {
	t.Helper()
	var walk func(ct string, h func(string) string, body io.Reader)
	walk = func(ct string, h func(string) string, body io.Reader) {
		mt, params, err := mime.ParseMediaType(ct)
		if err != nil {
			t.Fatalf("content type %q: %v", ct, err)
		}
		if strings.HasPrefix(mt, "multipart/") {
			r := multipart.NewReader(body, params["boundary"])
			for {
				p, err := r.NextRawPart()
				if err != nil {
					return
				}
				walk(p.Header.Get("Content-Type"), p.Header.Get, p)
			}
		}
		var rd io.Reader = body
		switch strings.ToLower(h("Content-Transfer-Encoding")) {
		case "quoted-printable":
			rd = quotedprintable.NewReader(body)
		case "base64":
			rd = base64Reader(body)
		}
		b, _ := io.ReadAll(rd)
		switch mt {
		case "text/plain":
			text = string(b)
		case "text/calendar":
			ics = string(b)
		}
	}
	walk(m.Header.Get("Content-Type"), m.Header.Get, m.Body)
	return text, ics
}

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+/l/[A-Za-z0-9_-]+`)

// awaitMails waits until the server holds n mails.
func awaitMails(t *testing.T, smtp *storetest.SMTPServer, n int) []*mail.Message {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ms := smtp.Mails()
		if len(ms) >= n || time.Now().After(deadline) {
			if len(ms) != n {
				t.Fatalf("%d mails arrived, want %d", len(ms), n)
			}
			return ms
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A session's seat messages reach every candidate once, with the exam's
// time and room, a one-time link to the mock test and one to the exam's
// lobby, and the session as a calendar event. A link shows whose account
// it opens, logs in once on its button and opens its page; used again it
// says so and offers the normal login; a browser logged in as someone else
// is refused and the link kept; a made-up or expired link says so.
func TestSeatMessagesAndOneTimeLinks(t *testing.T) {
	for _, kind := range storetest.DBKinds() {
		t.Run(kind, func(t *testing.T) {
			e, smtp := newMailEnv(t, kind, 3)
			admin := e.login(e.admin)
			code, out := call(t, e, admin, "POST", fmt.Sprintf("/api/admin/sessions/%d/notify-seats", e.session), nil)
			if code != 200 || !strings.Contains(string(out), `"queued":3`) {
				t.Fatalf("notify seats: %d %s", code, out)
			}
			mails := awaitMails(t, smtp, 3)
			var mine *mail.Message
			for _, m := range mails {
				if m.Header.Get("To") == "<cand0@examhall.test>" || m.Header.Get("To") == "cand0@examhall.test" {
					mine = m
				}
			}
			if mine == nil {
				t.Fatalf("no mail to cand0: %v", mails[0].Header)
			}
			subject, _ := new(mime.WordDecoder).DecodeHeader(mine.Header.Get("Subject"))
			if !strings.Contains(subject, "考试安排") || !strings.Contains(subject, "Your exam") {
				t.Fatalf("subject %q", subject)
			}
			text, ics := mailParts(t, mine)
			for _, want := range []string{"第一考场", e.cands[0].ticket, "理论考试", "Theory"} {
				if !strings.Contains(text, want) {
					t.Errorf("the mail does not say %q:\n%s", want, text)
				}
			}
			if !strings.Contains(ics, "BEGIN:VEVENT") || !strings.Contains(ics, "DTSTART:") {
				t.Fatalf("calendar %q", ics)
			}
			// Each link is in the Chinese text and again in the English.
			links := slices.Compact(linkRE.FindAllString(text, -1)[:2])
			if all := linkRE.FindAllString(text, -1); len(all) != 4 || len(links) != 2 || all[2] != links[0] || all[3] != links[1] {
				t.Fatalf("links %v in\n%s", links, text)
			}
			exam := links[1]

			// Progress of the batch says all were sent.
			var batch struct{ Batch string }
			jsonDecode(t, out, &batch)
			code, out = call(t, e, admin, "GET", "/api/admin/notify/progress?batch="+url.QueryEscape(batch.Batch), nil)
			if code != 200 || !strings.Contains(string(out), `"sent":3`) {
				t.Fatalf("progress: %d %s", code, out)
			}

			// Another candidate's browser cannot use it, and does not use it up.
			other := e.login(e.cands[1])
			if code, body := get(t, other, exam); code != http.StatusConflict || !strings.Contains(body, "link_not_yours") && !strings.Contains(body, "另一个账号") {
				t.Fatalf("another candidate's browser: %d %s", code, body)
			}
			// The link opens the candidate's lobby once.
			jar, _ := cookiejar.New(nil)
			browser := &http.Client{Jar: jar}
			code, body := get(t, browser, exam)
			if code != 200 || !strings.Contains(body, "考生") || !strings.Contains(body, `id="link"`) {
				t.Fatalf("link page: %d %s", code, body)
			}
			landed := useLink(t, browser, exam, body)
			if want := fmt.Sprintf("/exam?attempt=%d", e.cands[0].attempt); !strings.HasSuffix(landed, want) {
				t.Fatalf("landed on %s, want %s", landed, want)
			}
			if code, me := get(t, browser, e.srv.URL+"/api/me"); code != 200 || !strings.Contains(me, e.cands[0].ticket) && !strings.Contains(me, fmt.Sprint(e.cands[0].id)) {
				t.Fatalf("logged in as %d %s", code, me)
			}
			// Used: it says so, in a fresh browser too, and offers the login.
			jar2, _ := cookiejar.New(nil)
			if code, body := get(t, &http.Client{Jar: jar2}, exam); code != http.StatusGone || !strings.Contains(body, `id="login-instead"`) || strings.Contains(body, `id="link"`) {
				t.Fatalf("a used link: %d %s", code, body)
			}
			// A disabled account's link is refused and stays unused.
			e.db.Model(&store.User{}).Where("id = ?", e.cands[2].id).Update("disabled", true)
			var third store.LoginLink
			e.db.Where("user_id = ? AND target LIKE '/exam%'", e.cands[2].id).Take(&third)
			tried := false
			for _, m := range mails {
				if to := m.Header.Get("To"); strings.Contains(to, "cand2@") {
					tried = true
					text, _ := mailParts(t, m)
					link := slices.Compact(linkRE.FindAllString(text, -1)[:2])[1]
					jar3, _ := cookiejar.New(nil)
					b3 := &http.Client{Jar: jar3}
					_, page := get(t, b3, link)
					m := csrfField.FindStringSubmatch(page)
					if m == nil {
						t.Fatalf("no form for a disabled account's link: %s", page)
					}
					resp, err := b3.PostForm(link, url.Values{"csrf_token": {m[1]}})
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusForbidden {
						t.Fatalf("a disabled account's link: %d", resp.StatusCode)
					}
				}
			}
			e.db.Take(&third, third.ID)
			if !tried || third.ID == 0 || third.UsedAt != nil {
				t.Fatal("a disabled account's link was used up")
			}
			// Made up and expired links.
			if code, _ := get(t, &http.Client{}, e.srv.URL+"/l/ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"); code != http.StatusNotFound {
				t.Fatalf("a made-up link: %d", code)
			}
			e.db.Model(&store.LoginLink{}).Where("used_at IS NULL").Update("expires_at", time.Now().Add(-time.Minute))
			if code, _ := get(t, &http.Client{}, links[0]); code != http.StatusGone {
				t.Fatalf("an expired link: %d", code)
			}
			// Every message is listed for the admin, sent.
			code, out = call(t, e, admin, "GET", "/api/admin/messages?user="+e.cands[0].ticket, nil)
			if code != 200 || !strings.Contains(string(out), `"state":"sent"`) || !strings.Contains(string(out), "cand0@examhall.test") {
				t.Fatalf("messages: %d %s", code, out)
			}
			// The provider reports that it bounced: the admin sees it refused,
			// with the reason. A report without the token changes nothing.
			bounce := func(token string) int {
				body := fmt.Sprintf(`{"message_id":%q,"reason":"550 5.1.1 mailbox unknown"}`, mine.Header.Get("Message-Id"))
				req, _ := http.NewRequest("POST", e.srv.URL+"/api/notify/bounces", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if code := bounce("guess"); code != http.StatusUnauthorized {
				t.Fatalf("a bounce report without the token: %d", code)
			}
			if code := bounce(testBounceToken); code != 200 {
				t.Fatalf("a bounce report: %d", code)
			}
			_, out = call(t, e, admin, "GET", "/api/admin/messages?user="+e.cands[0].ticket, nil)
			if !strings.Contains(string(out), `"state":"refused"`) || !strings.Contains(string(out), "mailbox unknown") {
				t.Fatalf("after the bounce: %s", out)
			}
		})
	}
}

// get fetches a page without following redirects.
func get(t *testing.T, hc *http.Client, u string) (int, string) {
	t.Helper()
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// useLink presses the link page's button and returns where it sent the
// browser.
func useLink(t *testing.T, hc *http.Client, link, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form on %s", page)
	}
	c := *hc
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(link, url.Values{"csrf_token": {m[1]}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("using the link: %d %s", resp.StatusCode, b)
	}
	return resp.Header.Get("Location")
}

func jsonDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

func base64Reader(r io.Reader) io.Reader { return base64.NewDecoder(base64.StdEncoding, r) }

// A session's seat messages are queued at once and sent at the configured
// rate, each once; the admin follows them on the batch's progress. A
// session with a seat whose paper is not drawn queues nothing.
func TestBulkSeatMessagesKeepTheRate(t *testing.T) {
	const n, perSecond = 30, 10
	e, smtp := newMailEnv(t, "sqlite", n)
	e.stop()
	e.notify.Rate = perSecond
	e.startServer()
	admin := e.login(e.admin)

	extra := &store.Seat{SessionID: e.session, RoomID: e.room, CandidateID: e.invD.id, Ticket: "T-undrawn", SeatNo: 99}
	if err := e.db.Create(extra).Error; err != nil {
		t.Fatal(err)
	}
	code, out := call(t, e, admin, "POST", fmt.Sprintf("/api/admin/sessions/%d/notify-seats", e.session), nil)
	var queued int64
	e.db.Model(&store.OutboxMessage{}).Count(&queued)
	if code != http.StatusConflict || !strings.Contains(string(out), "not_scheduled") || queued != 0 {
		t.Fatalf("a seat without its paper: %d %s, %d queued", code, out, queued)
	}
	e.db.Delete(extra)

	start := time.Now()
	code, out = call(t, e, admin, "POST", fmt.Sprintf("/api/admin/sessions/%d/notify-seats", e.session), nil)
	if code != 200 || !strings.Contains(string(out), fmt.Sprintf(`"queued":%d`, n)) {
		t.Fatalf("notify seats: %d %s", code, out)
	}
	var batch struct{ Batch string }
	jsonDecode(t, out, &batch)
	progress := func() map[string]int {
		var p struct{ States map[string]int }
		code, out := call(t, e, admin, "GET", "/api/admin/notify/progress?batch="+url.QueryEscape(batch.Batch), nil)
		if code != 200 {
			t.Fatalf("progress: %d %s", code, out)
		}
		jsonDecode(t, out, &p)
		return p.States
	}
	// The rate is an upper bound whatever the machine's speed: the bucket
	// holds one second's worth, then refills at the rate.
	for time.Since(start) < 1500*time.Millisecond {
		sent, allowed := progress()["sent"], perSecond+int(time.Since(start).Seconds()*perSecond)+1
		if sent > allowed {
			t.Fatalf("%d sent %v after queueing, over the rate of %d/s", sent, time.Since(start), perSecond)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mails := awaitMails(t, smtp, n)
	ids := map[string]bool{}
	to := map[string]bool{}
	for _, m := range mails {
		ids[m.Header.Get("Message-Id")] = true
		to[m.Header.Get("To")] = true
	}
	if len(ids) != n || len(to) != n {
		t.Fatalf("%d mails to %d people with %d Message-IDs, want %d each", len(mails), len(to), len(ids), n)
	}
	if p := progress(); p["sent"] != n {
		t.Fatalf("progress at the end %v", p)
	}
}

// TestSeatMessagesAt5000 measures a session's seat messages for 5,000
// candidates to a real SMTP server on loopback: the time to queue them
// (the admin's request), the time to send them all, and the admin API's
// latency meanwhile. A measurement for BENCHMARKS.md, not a check:
//
//	EXAMHALL_BENCH_MAIL=1 go test -count=1 -run TestSeatMessagesAt5000 -v -timeout 30m ./cmd/examhall/e2e/
func TestSeatMessagesAt5000(t *testing.T) {
	if os.Getenv("EXAMHALL_BENCH_MAIL") == "" {
		t.Skip("a measurement: set EXAMHALL_BENCH_MAIL=1")
	}
	const n = 5000
	setup := time.Now()
	e, smtp := newMailEnv(t, "sqlite", n)
	e.stop()
	e.notify.Rate = 1000 // the most --mail-rate allows: what the path can carry
	e.notify.Poll = time.Second
	e.startServer()
	t.Logf("set-up of %d seats: %v", n, time.Since(setup).Round(time.Second))
	admin := e.login(e.admin)

	start := time.Now()
	code, out := call(t, e, admin, "POST", fmt.Sprintf("/api/admin/sessions/%d/notify-seats", e.session), nil)
	queued := time.Since(start)
	if code != 200 || !strings.Contains(string(out), fmt.Sprintf(`"queued":%d`, n)) {
		t.Fatalf("notify seats: %d %.200s", code, out)
	}
	var lat []time.Duration
	for {
		t0 := time.Now()
		if code, _ := call(t, e, admin, "GET", "/api/admin/sessions", nil); code != 200 {
			t.Fatalf("sessions: %d", code)
		}
		lat = append(lat, time.Since(t0))
		var left int64
		e.db.Model(&store.OutboxMessage{}).Where("state IN ?", []string{store.OutboxQueued, store.OutboxSending}).Count(&left)
		if left == 0 {
			break
		}
		if time.Since(start) > 20*time.Minute {
			t.Fatalf("%d still waiting after 20 min", left)
		}
		time.Sleep(500 * time.Millisecond)
	}
	sent := time.Since(start)
	mails := len(smtp.Mails())
	slices.Sort(lat)
	t.Logf("queue %d seat messages: %v; all sent: %v (%.0f a second); mails received: %d; GET /api/admin/sessions while sending: median %v, max %v over %d calls",
		n, queued.Round(time.Millisecond), sent.Round(time.Millisecond), float64(n)/sent.Seconds(), mails,
		lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), len(lat))
	if mails != n {
		t.Fatalf("%d mails received, want %d", mails, n)
	}
}

// The exam's own events queue their messages: the reminders before a
// session (the mock test's while none was taken, the day's, the hour's,
// each once whatever the number of nodes and ticks), a refused admission
// with its reason, and an invigilator's room.
func TestExamEventsQueueTheirMessages(t *testing.T) {
	e, _ := newMailEnv(t, "sqlite", 2)
	ctx := t.Context()
	var s store.ExamSession
	e.db.Take(&s, e.session)
	kinds := func(user int64) string {
		var k []string
		e.db.Model(&store.OutboxMessage{}).Where("user_id = ?", user).Order("id").Pluck("kind", &k)
		return fmt.Sprint(k)
	}
	other := e.secondNode() // a second node queues nothing twice
	for _, before := range []time.Duration{30 * time.Hour, 29 * time.Hour, 12 * time.Hour, 30 * time.Minute, 10 * time.Minute} {
		for _, eng := range []*exam.Engine{e.engine, other.engine} {
			if _, err := eng.QueueReminders(ctx, s.StartsAt.Add(-before)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := kinds(e.cands[0].id); got != "[mock_reminder reminder_day reminder_hour]" {
		t.Fatalf("reminders %s", got)
	}

	inv := e.login(e.invA)
	if code, out := call(t, e, inv, "POST", fmt.Sprintf("/api/proctor/attempts/%d/refuse", e.cands[1].attempt), map[string]string{"reason": "证件不符 / ID does not match"}); code != 200 {
		t.Fatalf("refuse: %d %s", code, out)
	}
	var refused store.OutboxMessage
	e.db.Where("user_id = ? AND kind = 'admission_refused'", e.cands[1].id).Take(&refused)
	if !strings.Contains(refused.Data, "证件不符") {
		t.Fatalf("refusal message %+v", refused)
	}

	if err := accounts.SetContact(ctx, e.db, e.admin.id, e.invD.id, "invd@examhall.test", ""); err != nil {
		t.Fatal(err)
	}
	admin := e.login(e.admin)
	if code, out := call(t, e, admin, "POST", fmt.Sprintf("/api/admin/rooms/%d/invigilators", e.room), map[string]any{"user_id": e.invD.id}); code >= 300 {
		t.Fatalf("add invigilator: %d %s", code, out)
	}
	if got := kinds(e.invD.id); got != "[invigilator_assigned]" {
		t.Fatalf("invigilator's messages %s", got)
	}
}
