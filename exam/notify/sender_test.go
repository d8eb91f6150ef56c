package notify

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

const baseURL = "https://exam.example.test"

// seatNotice is a seat_assigned notice with its two links and its event.
func seatNotice(u store.User, start time.Time) store.Notice {
	return store.Notice{UserID: u.ID, Kind: "seat_assigned", Batch: "session-1", Data: store.NoticeData{
		Params: map[string]string{"programme": "HSK", "exam": "汉语水平考试五级 / HSK 5", "session_time": store.NoticeTime(start),
			"room": "A101", "ticket": "H51234567"},
		Links: []store.NoticeLink{
			{Param: "mock_link", Target: "/#mock", ExpiresAt: start},
			{Param: "exam_link", Target: "/exam?attempt=7", ExpiresAt: start.Add(2 * time.Hour)},
		},
		Event: &store.NoticeEvent{UID: "session-1-seat-1@examhall", Start: start, End: start.Add(2 * time.Hour),
			Summary: "HSK 5", Location: "A101"},
	}}
}

var linkPattern = regexp.MustCompile(regexp.QuoteMeta(baseURL) + `/l/([A-Za-z0-9_-]{43})`)

// A seat's mail arrives once, with its subject, both links and the
// calendar event; the links' hashes are stored and each works once.
func TestSeatMail(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		smtp := storetest.NewSMTP(t)
		dir := smtp.Dir
		mailer, err := NewSMTP(smtp.URL(), "")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		start := now.Add(48 * time.Hour).Truncate(time.Second)
		u := newUser(t, db, "张三", "zhang.san@example.test", "")
		enqueue(t, db, now, seatNotice(u, start))
		run(t, New(Config{DB: db, Mail: mailer, BaseURL: baseURL + "/", Poll: 20 * time.Millisecond, Logger: testLogger(t)}))

		waitFor(t, 10*time.Second, "the mail sent", func() bool { return count(t, db, "state = ?", store.OutboxSent) == 1 })
		time.Sleep(200 * time.Millisecond) // several more ticks: nothing goes twice
		mails := maildir(t, dir)
		if len(mails) != 1 {
			t.Fatalf("%d mails arrived, want 1", len(mails))
		}
		row := outbox(t, db)[0]
		if row.Attempts != 1 || row.SentAt == nil || row.Error != "" || row.LeaseUntil != nil {
			t.Errorf("row after sending: %+v", row)
		}
		m := parseMail(t, mails[0])
		if got := m.Header.Get("Message-Id"); got != "<"+row.MessageID+">" {
			t.Errorf("Message-ID %q, want <%s>", got, row.MessageID)
		}
		if !strings.Contains(m.Subject, "考试安排：汉语水平考试五级 / HSK 5") || !strings.Contains(m.Subject, "Your exam: 汉语水平考试五级 / HSK 5") ||
			strings.Contains(m.Subject, "{") {
			t.Errorf("subject %q", m.Subject)
		}
		if !strings.Contains(m.Text, "张三，您好") || !strings.Contains(m.Text, "Dear 张三") || !strings.Contains(m.Text, baseURL+"/login") {
			t.Errorf("text lacks the name or the login URL:\n%s", m.Text)
		}
		var tokens []string // in order of appearance: the mock test's, then the exam's
		for _, sm := range linkPattern.FindAllStringSubmatch(m.Text, -1) {
			if !slices.Contains(tokens, sm[1]) {
				tokens = append(tokens, sm[1])
			}
		}
		if len(tokens) != 2 {
			t.Fatalf("want 2 distinct links in the text, got %v:\n%s", tokens, m.Text)
		}
		for _, tok := range tokens {
			if !strings.Contains(m.HTML, `<a href="`+baseURL+"/l/"+tok+`">`) {
				t.Errorf("HTML lacks the link %s", tok)
			}
		}
		if len(m.Attachments) != 1 {
			t.Fatalf("%d attachments, want the .ics", len(m.Attachments))
		}
		ics := m.Attachments[0]
		if ics.Name != "exam.ics" || !strings.HasPrefix(ics.ContentType, "text/calendar") || !strings.Contains(ics.ContentType, "method=REQUEST") {
			t.Errorf("attachment %q of type %q", ics.Name, ics.ContentType)
		}
		if !strings.Contains(string(ics.Body), "\r\nDTSTART:"+start.Format("20060102T150405Z")+"\r\n") {
			t.Errorf("ics lacks DTSTART:\n%s", ics.Body)
		}

		// Only the tokens' hashes are stored, for this message.
		var links []store.LoginLink
		if err := db.Order("id").Find(&links).Error; err != nil {
			t.Fatal(err)
		}
		if len(links) != 2 {
			t.Fatalf("%d login links stored, want 2", len(links))
		}
		for i, l := range links {
			if l.TokenHash != store.LinkHash(tokens[i]) || l.UserID != u.ID || l.OutboxID == nil || *l.OutboxID != row.ID {
				t.Errorf("link %d: %+v", i, l)
			}
		}
		mock, exam := tokens[0], tokens[1]
		l, err := Redeem(ctx, db, mock, now)
		if err != nil || l.Target != "/#mock" || l.UserID != u.ID {
			t.Fatalf("first redeem: %+v, %v", l, err)
		}
		if _, err := Redeem(ctx, db, mock, now); !errors.Is(err, ErrLinkUsed) {
			t.Errorf("second redeem: %v, want ErrLinkUsed", err)
		}
		if _, err := Redeem(ctx, db, exam, start.Add(3*time.Hour)); !errors.Is(err, ErrLinkExpired) {
			t.Errorf("redeem after expiry: %v, want ErrLinkExpired", err)
		}
		if _, err := Redeem(ctx, db, newToken(), now); !errors.Is(err, ErrLinkUnknown) {
			t.Errorf("made-up token: %v, want ErrLinkUnknown", err)
		}
		if l, err := Redeem(ctx, db, exam, now); err != nil || l.Target != "/exam?attempt=7" {
			t.Errorf("exam link before expiry: %+v, %v", l, err)
		}
	})
}

// Twenty mails queued while the mail server is down all arrive once it is
// up, each once, though two senders share the outbox.
func TestOutage(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		smtp := storetest.NewSMTP(t)
		smtp.Stop() // down until the messages have failed once
		dir := smtp.Dir
		mailer, err := NewSMTP(smtp.URL(), "")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		var notices []store.Notice
		for i := range 20 {
			u := newUser(t, db, fmt.Sprintf("考生%d", i), fmt.Sprintf("c%d@example.test", i), "")
			notices = append(notices, store.Notice{UserID: u.ID, Kind: "fee_confirmed", Batch: "fees",
				Data: store.NoticeData{Params: map[string]string{"programme": "HSK", "level": "五级", "amount": "¥450"}}})
		}
		enqueue(t, db, now, notices...)
		regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
		senders := make([]*Sender, len(regs))
		for i, reg := range regs {
			senders[i] = New(Config{DB: db, Mail: mailer, BaseURL: baseURL, Rate: 1000, Poll: 50 * time.Millisecond,
				Backoff: 50 * time.Millisecond, Logger: testLogger(t).With("node", i), Metrics: reg})
			run(t, senders[i])
		}

		waitFor(t, 10*time.Second, "a failed try of every message", func() bool { return count(t, db, "attempts >= 1") == 20 })
		if n := count(t, db, "state = ?", store.OutboxSent); n != 0 {
			t.Fatalf("%d sent with the server down", n)
		}
		if row := outbox(t, db)[0]; !strings.Contains(row.Error, "connection refused") {
			t.Errorf("error kept after a failed try: %q", row.Error)
		}
		smtp.Start()
		waitFor(t, 10*time.Second, "all sent", func() bool { return count(t, db, "state = ?", store.OutboxSent) == 20 })
		time.Sleep(200 * time.Millisecond)

		mails := maildir(t, dir)
		if len(mails) != 20 {
			t.Fatalf("%d mails arrived, want 20", len(mails))
		}
		want := map[string]bool{}
		for _, r := range outbox(t, db) {
			want["<"+r.MessageID+">"] = true
		}
		seen := map[string]bool{}
		for _, raw := range mails {
			id := parseMail(t, raw).Header.Get("Message-Id")
			if seen[id] || !want[id] {
				t.Errorf("Message-ID %s: twice or not in the outbox", id)
			}
			seen[id] = true
		}
		if p, err := Progress(context.Background(), db, "fees"); err != nil || p[store.OutboxSent] != 20 || len(p) != 1 {
			t.Errorf("progress %v, %v", p, err)
		}

		var sent, temporary float64
		for _, s := range senders {
			sent += testutil.ToFloat64(s.sent.WithLabelValues("email"))
			temporary += testutil.ToFloat64(s.failed.WithLabelValues("email", "temporary"))
		}
		if sent != 20 || temporary < 20 {
			t.Errorf("metrics: %v sent, %v temporary failures", sent, temporary)
		}
		if n, err := testutil.GatherAndCount(regs[0], "examhall_notify_sent_total", "examhall_notify_queue"); err != nil || n < 2 {
			t.Errorf("registered metrics: %d, %v", n, err)
		}
	})
}

// fakeSMTP answers RCPT TO with rcpt and everything else as a willing
// server would: only to test how refusals are classified, since aiosmtpd's
// Mailbox takes every recipient.
func fakeSMTP(t *testing.T, rcpt string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { serveSMTP(c, rcpt) })
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

func serveSMTP(c net.Conn, rcpt string) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprint(c, "220 fake ESMTP\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO", "HELO":
			fmt.Fprint(c, "250-fake\r\n250 8BITMIME\r\n")
		case "RCPT":
			fmt.Fprint(c, rcpt+"\r\n")
		case "DATA":
			fmt.Fprint(c, "354 go on\r\n")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			fmt.Fprint(c, "250 2.0.0 Ok\r\n")
		case "QUIT":
			fmt.Fprint(c, "221 2.0.0 Bye\r\n")
			return
		case "MAIL", "RSET", "NOOP":
			fmt.Fprint(c, "250 2.0.0 Ok\r\n")
		default:
			fmt.Fprint(c, "502 5.5.2 unknown command\r\n")
		}
	}
}

// A 5xx answer to RCPT refuses the mail for good; a 4xx answer or no
// server is temporary.
func TestSMTPErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		port    int
		refused bool
		text    string
	}{
		{"550 at RCPT", fakeSMTP(t, "550 5.1.1 <nobody@example.test>: no such user"), true, "no such user"},
		{"450 at RCPT", fakeSMTP(t, "450 4.2.1 mailbox busy, come back later"), false, "mailbox busy"},
		{"accepted", fakeSMTP(t, "250 2.1.5 Ok"), false, ""},
		{"no server", freePort(t), false, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mailer, err := NewSMTP(smtpURL(tc.port), "")
			if err != nil {
				t.Fatal(err)
			}
			err = mailer.Send(context.Background(), Mail{To: "nobody@example.test", Subject: "s", Text: "t", MessageID: "x@examhall"})
			if tc.text == "" {
				if err != nil {
					t.Fatalf("send: %v", err)
				}
				return
			}
			if err == nil || errors.Is(err, ErrRefused) != tc.refused || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("send: %v; want refused=%v with %q", err, tc.refused, tc.text)
			}
		})
	}
}

// A refused mail is marked refused with the server's text, after one try,
// and the links made for it are deleted.
func TestRefused(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		port := fakeSMTP(t, "550 5.1.1 <gone@example.test>: no such user")
		mailer, err := NewSMTP(smtpURL(port), "")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		enqueue(t, db, now, seatNotice(newUser(t, db, "李四", "gone@example.test", ""), now.Add(24*time.Hour)))
		run(t, New(Config{DB: db, Mail: mailer, BaseURL: baseURL, Poll: 20 * time.Millisecond, Logger: testLogger(t)}))
		waitFor(t, 10*time.Second, "the refusal", func() bool { return count(t, db, "state = ?", store.OutboxRefused) == 1 })
		row := outbox(t, db)[0]
		if row.Attempts != 1 || !strings.Contains(row.Error, "550") || !strings.Contains(row.Error, "5.1.1 <gone@example.test>: no such user") || row.LeaseUntil != nil {
			t.Errorf("refused row: %+v", row)
		}
		var links int64
		db.Model(&store.LoginLink{}).Count(&links)
		if links != 0 {
			t.Errorf("%d links left of a refused try", links)
		}
	})
}

// Text messages go through the HTTP gateway (200: sent, 400: refused); an
// invalid number is never sent; email stays queued without a mail server.
func TestSMS(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		var mu sync.Mutex
		got := map[string]string{}
		gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var body struct{ To, Text string }
			if r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer tok" || json.NewDecoder(r.Body).Decode(&body) != nil {
				http.Error(w, "bad request", http.StatusUnauthorized)
				return
			}
			mu.Lock()
			got[body.To] = body.Text
			mu.Unlock()
			if body.To == "+8613800000002" {
				http.Error(w, "unknown number", http.StatusBadRequest)
			}
		}))
		t.Cleanup(gw.Close)

		now := time.Now().UTC()
		params := map[string]string{"programme": "HSK", "level": "五级", "amount": "¥450"}
		var notices []store.Notice
		for _, u := range []store.User{
			newUser(t, db, "王五", "wang@example.test", "+8613800000001"),
			newUser(t, db, "赵六", "", "+8613800000002"),
			newUser(t, db, "钱七", "", "12ab"),
		} {
			notices = append(notices, store.Notice{UserID: u.ID, Kind: "fee_confirmed", Data: store.NoticeData{Params: params}})
		}
		enqueue(t, db, now, notices...)
		run(t, New(Config{DB: db, SMS: HTTPSMS{URL: gw.URL, Token: "tok"}, BaseURL: baseURL, Poll: 20 * time.Millisecond, Logger: testLogger(t)}))
		waitFor(t, 10*time.Second, "both numbers tried", func() bool {
			return count(t, db, "channel = ? AND state IN ?", store.ChannelSMS, []string{store.OutboxSent, store.OutboxRefused}) == 2
		})
		time.Sleep(100 * time.Millisecond)

		state := map[string]store.OutboxMessage{}
		for _, r := range outbox(t, db) {
			state[r.Channel+" "+r.Address] = r
		}
		if r := state["sms +8613800000001"]; r.State != store.OutboxSent {
			t.Errorf("sms to a good number: %+v", r)
		}
		if r := state["sms +8613800000002"]; r.State != store.OutboxRefused || !strings.Contains(r.Error, "unknown number") {
			t.Errorf("sms refused by the gateway: %+v", r)
		}
		if r := state["sms 12ab"]; r.State != store.OutboxInvalid || r.Attempts != 0 {
			t.Errorf("invalid number: %+v", r)
		}
		if r := state["email wang@example.test"]; r.State != store.OutboxQueued || r.Attempts != 0 {
			t.Errorf("email without a mail server: %+v", r)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 2 {
			t.Errorf("gateway got %v, want the two valid numbers", got)
		}
		_, _, _, want, _ := Render("fee_confirmed", params)
		if got["+8613800000001"] != want {
			t.Errorf("sms text %q, want %q", got["+8613800000001"], want)
		}
	})
}

// The gateway's answers are classified: 4xx refuses, except 408 and 429.
func TestHTTPSMSErrors(t *testing.T) {
	for _, tc := range []struct {
		status      int
		ok, refused bool
	}{{200, true, false}, {204, true, false}, {400, false, true}, {404, false, true}, {429, false, false}, {503, false, false}} {
		gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(tc.status) }))
		err := HTTPSMS{URL: gw.URL}.Send(context.Background(), "+8613800000001", "hi")
		gw.Close()
		if (err == nil) != tc.ok || errors.Is(err, ErrRefused) != tc.refused {
			t.Errorf("status %d: %v", tc.status, err)
		}
	}
	if err := (HTTPSMS{URL: "http://127.0.0.1:1"}).Send(context.Background(), "+8613800000001", "hi"); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("no gateway: %v, want a temporary error", err)
	}
}

// An admin's "send again" requeues finished messages only, with a new
// Message-ID for one that was sent.
func TestResend(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		u := newUser(t, db, "孙八", "sun@example.test", "")
		n := store.Notice{UserID: u.ID, Kind: "fee_confirmed", Batch: "b", Data: store.NoticeData{Params: map[string]string{}}}
		enqueue(t, db, now, n, n, n)
		rows := outbox(t, db)
		db.Model(&rows[0]).Updates(map[string]any{"state": store.OutboxSent, "attempts": 2, "sent_at": now})
		db.Model(&rows[1]).Updates(map[string]any{"state": store.OutboxRefused, "attempts": 1, "error": "550"})
		if p, err := Progress(ctx, db, "b"); err != nil || p[store.OutboxSent] != 1 || p[store.OutboxRefused] != 1 || p[store.OutboxQueued] != 1 {
			t.Errorf("progress %v, %v", p, err)
		}
		db.Model(&u).Update("email", "sun.new@example.test")
		for _, r := range rows[:2] {
			if err := Resend(ctx, db, r.ID, 7, now); err != nil {
				t.Fatal(err)
			}
		}
		var audits int64
		db.Model(&store.AuditEvent{}).Where("action = 'message_resent' AND actor_id = 7").Count(&audits)
		if audits != 2 {
			t.Errorf("%d resends audited, want 2", audits)
		}
		after := outbox(t, db)
		for i, r := range after[:2] {
			if r.State != store.OutboxQueued || r.Attempts != 0 || r.Error != "" || r.SentAt != nil || r.Address != "sun.new@example.test" {
				t.Errorf("row %d after resend: %+v", i, r)
			}
		}
		if after[0].MessageID == rows[0].MessageID || after[1].MessageID != rows[1].MessageID {
			t.Errorf("Message-IDs: sent %s→%s, refused %s→%s", rows[0].MessageID, after[0].MessageID, rows[1].MessageID, after[1].MessageID)
		}
		if err := Resend(ctx, db, rows[2].ID, 7, now); !errors.Is(err, ErrNotResendable) {
			t.Errorf("resend of a queued message: %v", err)
		}
		if err := Resend(ctx, db, 99999, 7, now); !errors.Is(err, ErrNoMessage) {
			t.Errorf("resend of no message: %v", err)
		}
	})
}

// A message whose sender stopped during a try (state sending, lease over)
// is taken over and sent; one whose lease runs is left alone.
func TestLeaseTakeover(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		smtp := storetest.NewSMTP(t)
		dir := smtp.Dir
		mailer, err := NewSMTP(smtp.URL(), "")
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		n := store.Notice{UserID: newUser(t, db, "周九", "zhou@example.test", "").ID, Kind: "fee_confirmed",
			Data: store.NoticeData{Params: map[string]string{"programme": "HSK", "level": "五级", "amount": "¥450"}}}
		enqueue(t, db, now, n, n)
		rows := outbox(t, db)
		db.Model(&rows[0]).Updates(map[string]any{"state": store.OutboxSending, "attempts": 1, "lease_until": now.Add(-time.Second)})
		db.Model(&rows[1]).Updates(map[string]any{"state": store.OutboxSending, "attempts": 1, "lease_until": now.Add(time.Hour)})
		run(t, New(Config{DB: db, Mail: mailer, BaseURL: baseURL, Poll: 20 * time.Millisecond, Logger: testLogger(t)}))
		waitFor(t, 10*time.Second, "the stale try taken over", func() bool { return count(t, db, "state = ?", store.OutboxSent) == 1 })
		time.Sleep(100 * time.Millisecond)
		after := outbox(t, db)
		if after[0].State != store.OutboxSent || after[0].Attempts != 2 || after[1].State != store.OutboxSending || after[1].Attempts != 1 {
			t.Errorf("after: %+v\n%+v", after[0], after[1])
		}
		if mails := maildir(t, dir); len(mails) != 1 {
			t.Errorf("%d mails, want 1", len(mails))
		}
	})
}
