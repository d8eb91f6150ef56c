package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// SMS sends a text message to a mobile number. An error wrapping
// ErrRefused means the gateway refused it for good; any other error is
// temporary.
type SMS interface {
	Send(ctx context.Context, to, text string) error
}

// LogSMS writes each message to the log instead of sending it: the
// default when no gateway is configured, for development and trials. The
// log then holds the messages' one-time links.
type LogSMS struct {
	Logger *slog.Logger // nil: slog.Default()
}

// Send implements SMS.
// linkInText finds one-time login links' tokens.
var linkInText = regexp.MustCompile(`/l/[A-Za-z0-9_-]+`)

func (l LogSMS) Send(ctx context.Context, to, text string) error {
	log := l.Logger
	if log == nil {
		log = slog.Default()
	}
	// A one-time link in a log would log in whoever reads it.
	log.InfoContext(ctx, "sms not sent: no gateway configured", "to", to, "text", linkInText.ReplaceAllString(text, "/l/[link]"))
	return nil
}

// HTTPSMS sends through an HTTP gateway: a POST of {"to": ..., "text": ...}
// to URL with "Authorization: Bearer <Token>". A 2xx answer is success; a
// 4xx refuses the message for good (except 408 and 429, which ask to come
// back later); anything else is temporary.
type HTTPSMS struct {
	URL, Token string
	Client     *http.Client // nil: a client with a 15 s timeout
}

var defaultSMSClient = &http.Client{Timeout: 15 * time.Second}

// Send implements SMS.
func (h HTTPSMS) Send(ctx context.Context, to, text string) error {
	body, err := json.Marshal(struct {
		To   string `json:"to"`
		Text string `json:"text"`
	}{to, text})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+h.Token)
	c := h.Client
	if c == nil {
		c = defaultSMSClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("sms gateway: %w", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
		return fmt.Errorf("%w: sms gateway: %s: %s", ErrRefused, resp.Status, strings.TrimSpace(string(answer)))
	default:
		return fmt.Errorf("sms gateway: %s: %s", resp.Status, strings.TrimSpace(string(answer)))
	}
}
