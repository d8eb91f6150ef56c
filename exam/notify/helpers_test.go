package notify

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/examhall/examhall/store"
)

// freePort is a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// smtpURL is the URL of a server on a loopback port, in clear.
func smtpURL(port int) string {
	return fmt.Sprintf("smtp://127.0.0.1:%d?tls=none&from=exam@examhall.test", port)
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testLogger writes to the test's output, shown when it fails.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// run runs s until the test ends, and checks that Run returns then.
func run(t *testing.T, s *Sender) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	})
}

var userSeq struct {
	sync.Mutex
	n int
}

// newUser adds a candidate with the given name, email and mobile.
func newUser(t *testing.T, db *store.DB, name, email, mobile string) store.User {
	t.Helper()
	userSeq.Lock()
	userSeq.n++
	n := userSeq.n
	userSeq.Unlock()
	u := store.User{Role: store.RoleCandidate, Username: fmt.Sprintf("9%09d", n), PasswordHash: "x",
		DisplayName: name, Email: email, Mobile: mobile}
	if err := db.Create(&u).Error; err != nil {
		t.Fatal(err)
	}
	return u
}

// enqueue queues notices now.
func enqueue(t *testing.T, db *store.DB, now time.Time, notices ...store.Notice) {
	t.Helper()
	if _, err := store.Enqueue(context.Background(), db.DB, now, notices...); err != nil {
		t.Fatal(err)
	}
}

// outbox reads every outbox row, by id.
func outbox(t *testing.T, db *store.DB) []store.OutboxMessage {
	t.Helper()
	var rows []store.OutboxMessage
	if err := db.Order("id").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

// count counts outbox rows matching a condition.
func count(t *testing.T, db *store.DB, where string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.Model(&store.OutboxMessage{}).Where(where, args...).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// maildir reads the messages a Maildir holds.
func maildir(t *testing.T, dir string) [][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "new", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// parsedMail is a received mail taken apart.
type parsedMail struct {
	Header      mail.Header
	Subject     string
	Text, HTML  string
	Attachments []attachment
}

type attachment struct {
	Name, ContentType string
	Body              []byte
}

func parseMail(t *testing.T, raw []byte) parsedMail {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	p := parsedMail{Header: msg.Header}
	if p.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		t.Fatal(err)
	}
	walkPart(t, textproto.MIMEHeader(msg.Header), msg.Body, &p)
	return p
}

// walkPart collects the texts and attachments of a MIME part.
func walkPart(t *testing.T, h textproto.MIMEHeader, body io.Reader, p *parsedMail) {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			walkPart(t, part.Header, part, p)
		}
	}
	// multipart.Reader decodes quoted-printable itself and drops the header.
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(bufio.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, disp, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	switch {
	case disp["filename"] != "":
		p.Attachments = append(p.Attachments, attachment{Name: disp["filename"], ContentType: h.Get("Content-Type"), Body: b})
	case mediaType == "text/plain":
		p.Text = string(b)
	case mediaType == "text/html":
		p.HTML = string(b)
	}
}
