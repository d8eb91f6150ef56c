package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/media/mediatest"
)

// Once an attempt has ended its cameras are no longer taken: no camera is
// published, no phone paired, and a paired phone's device key no longer
// opens its socket.
func TestNoCamerasAfterTheEnd(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	cd := e.cands[0]
	ctx := context.Background()
	c := e.connect(cd)
	c.start()
	// Before the end: one phone paired (its device key kept), one link unused.
	link, _, err := e.media.Pair(ctx, cd.attempt, e.srv.URL, e.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := e.media.Redeem(ctx, token(t, link), e.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	unused, _, err := e.media.Pair(ctx, cd.attempt, e.srv.URL, e.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	c.send(map[string]any{"type": "submit", "id": "s"})
	c.await("ended", is("ended"))

	if _, _, err := e.media.Pair(ctx, cd.attempt, e.srv.URL, e.clock.now()); !errors.Is(err, media.ErrAttemptOver) {
		t.Errorf("pairing after the end: %v", err)
	}
	if _, _, err := e.media.Redeem(ctx, token(t, unused), e.clock.now()); !errors.Is(err, media.ErrAttemptOver) {
		t.Errorf("a link redeemed after the end: %v", err)
	}
	if _, err := e.media.Device(ctx, key); !errors.Is(err, media.ErrAttemptOver) {
		t.Errorf("a device key after the end: %v", err)
	}
	ws := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws/phone?key=" + url.QueryEscape(key)
	if _, resp, err := wsDialer(&http.Client{}).Dial(ws, nil); err == nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("the phone's socket after the end: %v %v", err, resp)
	}
	pub := mediatest.New(t, false, false)
	offer, _ := pub.PC.CreateOffer(nil)
	if _, err := e.media.Publish(ctx, cd.attempt, media.Phone, offer.SDP, nil); !errors.Is(err, media.ErrAttemptOver) {
		t.Errorf("publishing after the end: %v", err)
	}
}

func token(t *testing.T, link string) string {
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("t") == "" {
		t.Fatalf("pairing link %q", link)
	}
	return u.Query().Get("t")
}

// A pairing link is used up only by a phone whose socket opens: a plain
// GET of the socket's address, or a handshake from another site's page,
// is refused and leaves the link as it was.
func TestPairingLinkSurvivesRefusedHandshakes(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	link, _, err := e.media.Pair(context.Background(), e.cands[0].attempt, e.srv.URL, e.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	sock := strings.Replace(link, "/phone?", "/ws/phone?", 1)
	resp, err := http.Get(sock)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a plain GET: %v %v", err, resp)
	}
	resp.Body.Close()
	ws := "ws" + strings.TrimPrefix(sock, "http")
	if _, resp, err := wsDialer(&http.Client{}).Dial(ws, http.Header{"Origin": {"https://evil.example"}}); err == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-origin handshake: %v %v", err, resp)
	}
	conn, _, err := wsDialer(&http.Client{}).Dial(ws, nil)
	if err != nil {
		t.Fatalf("the phone, after the refused attempts: %v", err)
	}
	conn.Close()
}

// TestSocketsCloseWhileDevicesConnect closes every socket while phones are
// connecting, as a shutdown or a test's cut does: with -race this failed
// when a socket upgraded during the wait was counted after it began.
func TestSocketsCloseWhileDevicesConnect(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	link, _, err := e.media.Pair(context.Background(), e.cands[0].attempt, e.srv.URL, e.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	phone, _, err := e.open(&http.Client{}, strings.TrimPrefix(strings.Replace(link, "/phone?", "/ws/phone?", 1), e.srv.URL))
	if err != nil {
		t.Fatal(err)
	}
	paired := phone.await("paired", func(m map[string]any) bool { return m["type"] == "paired" })
	ws := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws/phone?key=" + paired["device_key"].(string)
	done := make(chan struct{})
	var opened atomic.Int64
	go func() {
		defer close(done)
		for range 40 {
			if conn, _, err := wsDialer(&http.Client{}).Dial(ws, nil); err == nil {
				opened.Add(1)
				conn.Close()
			}
		}
	}()
	for range 40 {
		e.web.CloseSockets()
	}
	<-done
	if opened.Load() == 0 {
		t.Fatal("no phone connected between the closes")
	}
}
