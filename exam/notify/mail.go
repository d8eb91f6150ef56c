package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Mail is one email: a plain text and an HTML version of one message, and
// a calendar event to attach when ICS is not empty.
type Mail struct {
	To, Subject, Text, HTML string
	// MessageID is the mail's Message-ID without the angle brackets: the
	// outbox row's, the same at every try.
	MessageID string
	ICS       []byte
}

// Mailer sends an email. An error wrapping ErrRefused means the server
// refused it for good; any other error is temporary.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}

// smtpTimeout bounds each step of an SMTP conversation.
const smtpTimeout = 30 * time.Second

// NewSMTP returns a Mailer that hands each mail to an SMTP server, named by
// a URL: smtp://[user@]host[:port]?tls=starttls|tls|none&from=address.
// tls is starttls by default (port 587); tls means TLS from the first byte
// (port 465); none sends in clear (port 25). from, the sender's address, is
// required. With a user, the Mailer logs in with PLAIN and password (the
// URL's own password when password is empty); in clear only to a loopback
// host.
func NewSMTP(rawURL, password string) (Mailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("notify: SMTP URL: %w", err)
	}
	if u.Scheme != "smtp" || u.Hostname() == "" {
		return nil, errors.New("notify: SMTP URL must be smtp://[user@]host[:port]?from=address")
	}
	q := u.Query()
	from := q.Get("from")
	if _, err := mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("notify: SMTP URL: from=%q is not an address: %v", from, err)
	}
	host := u.Hostname()
	opts := []gomail.Option{gomail.WithTimeout(smtpTimeout)}
	port := 0
	mode := q.Get("tls")
	switch mode {
	case "", "starttls":
		mode = "starttls"
		port = gomail.DefaultPortTLS
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		port = gomail.DefaultPortSSL
		opts = append(opts, gomail.WithSSL())
	case "none":
		port = gomail.DefaultPort
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("notify: SMTP URL: tls=%q: want starttls, tls or none", mode)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("notify: SMTP URL: port %q", p)
		}
	}
	opts = append(opts, gomail.WithPort(port))
	if user := u.User.Username(); user != "" {
		if password == "" {
			password, _ = u.User.Password()
		}
		auth := gomail.SMTPAuthPlain
		if mode == "none" {
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return nil, errors.New("notify: SMTP URL: a password is sent in clear (tls=none) only to a loopback host")
			}
			auth = gomail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(user), gomail.WithPassword(password))
	}
	c, err := gomail.NewClient(host, opts...)
	if err != nil {
		return nil, fmt.Errorf("notify: SMTP client: %w", err)
	}
	return &smtpMailer{client: c, from: from}, nil
}

type smtpMailer struct {
	client *gomail.Client
	from   string
}

// Send delivers m over a connection of its own.
func (s *smtpMailer) Send(ctx context.Context, m Mail) error {
	msg, err := newMsg(s.from, m)
	if err != nil {
		return err
	}
	err = s.client.DialAndSendWithContext(ctx, msg)
	if err == nil || msg.IsDelivered() {
		// Delivered: a failure after the server took the message (at RSET
		// or QUIT) does not matter.
		return nil
	}
	return classify(err)
}

// classify wraps ErrRefused around a permanent refusal (a 5xx answer) to
// the mail transaction: MAIL FROM, RCPT TO, DATA or the end of the data.
// A 5xx elsewhere (a failed login) is the server's configuration, not the
// message's, and is retried like any other error.
func classify(err error) error {
	var se *gomail.SendError
	if errors.As(err, &se) && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
		switch se.Reason {
		case gomail.ErrSMTPMailFrom, gomail.ErrSMTPRcptTo, gomail.ErrSMTPData, gomail.ErrSMTPDataClose:
			return fmt.Errorf("%w: %v", ErrRefused, err)
		}
	}
	return err
}

// newMsg builds a mail: text and HTML as multipart/alternative, the event
// as exam.ics. A recipient that is not an address is refused.
func newMsg(from string, m Mail) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, err
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRefused, err)
	}
	msg.Subject(m.Subject)
	if m.MessageID != "" {
		msg.SetMessageIDWithValue(m.MessageID)
	} else {
		msg.SetMessageID()
	}
	msg.SetDate()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	if len(m.ICS) > 0 {
		msg.AttachReadSeeker("exam.ics", bytes.NewReader(m.ICS),
			gomail.WithFileContentType(gomail.ContentType("text/calendar; method=REQUEST")))
	}
	return msg, nil
}

// DirMailer writes each mail to Dir as <Message-ID>.eml instead of sending
// it: for a demo or a trial without a mail server. Every try of a message
// writes the same file.
type DirMailer struct {
	Dir  string
	From string // default "examhall@localhost"
}

// Send implements Mailer.
func (d DirMailer) Send(_ context.Context, m Mail) error {
	from := d.From
	if from == "" {
		from = "examhall@localhost"
	}
	msg, err := newMsg(from, m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.Dir, 0o750); err != nil {
		return err
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '@' {
			return r
		}
		return '_'
	}, m.MessageID)
	if name == "" {
		name = rand.Text()
	}
	f, err := os.CreateTemp(d.Dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := msg.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(d.Dir, name+".eml"))
}
