package media_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/store"
)

// viewPage is a console's side of a viewer, made with pion: it answers
// the server's offers and notes the width of every key frame it receives,
// by stream.
type viewPage struct {
	v      *media.Viewer
	mu     sync.Mutex
	widths map[string][]int
	seqGap int // sequence numbers that went back or jumped, over all video
	offers int
}

func openViewPage(t *testing.T, svc *media.Service) *viewPage {
	t.Helper()
	page := newPublisher(t, false).PC
	for _, tr := range page.GetTransceivers() {
		page.RemoveTrack(tr.Sender())
	}
	vp := &viewPage{widths: map[string][]int{}}
	page.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		var last uint16
		seen := false
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if tr.Kind() != webrtc.RTPCodecTypeVideo {
				continue
			}
			vp.mu.Lock()
			if seen && pkt.SequenceNumber-last != 1 {
				vp.seqGap++
			}
			seen, last = true, pkt.SequenceNumber
			var d codecs.VP8Packet
			if b, err := d.Unmarshal(pkt.Payload); err == nil && d.S == 1 && d.PID == 0 && len(b) >= 10 && b[0]&1 == 0 {
				vp.widths[tr.StreamID()] = append(vp.widths[tr.StreamID()], int(uint16(b[6])|uint16(b[7])<<8)&0x3fff)
			}
			vp.mu.Unlock()
		}
	})
	msgs := make(chan map[string]any, 64)
	v, err := svc.View(func(m any) { msgs <- m.(map[string]any) })
	if err != nil {
		t.Fatal(err)
	}
	vp.v = v
	t.Cleanup(v.Close)
	go func() {
		for m := range msgs {
			switch m["type"] {
			case "view_offer":
				page.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m["sdp"].(string)})
				ans, _ := page.CreateAnswer(nil)
				page.SetLocalDescription(ans)
				if err := v.Answer(ans.SDP); err != nil {
					t.Errorf("answer: %v", err)
				}
				vp.mu.Lock()
				vp.offers++
				vp.mu.Unlock()
			case "view_ice":
				b, _ := json.Marshal(m["candidate"])
				var c webrtc.ICECandidateInit
				json.Unmarshal(b, &c)
				page.AddICECandidate(c)
			}
		}
	}()
	page.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			j := c.ToJSON()
			v.AddICECandidate(map[string]any{"candidate": j.Candidate, "sdpMid": j.SDPMid, "sdpMLineIndex": j.SDPMLineIndex})
		}
	})
	return vp
}

// waitWidth waits until the latest key frame of a stream has width w.
func (vp *viewPage) waitWidth(t *testing.T, stream string, w int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		vp.mu.Lock()
		ws := vp.widths[stream]
		last := 0
		if len(ws) > 0 {
			last = ws[len(ws)-1]
		}
		vp.mu.Unlock()
		if last == w {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: key frame widths %v, want %d within %s", stream, ws, w, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A camera sent in two layers reaches a console's grid as its small layer
// and, once the candidate is opened, as its full one within 2 s, with
// packets renumbered so the switch is seamless; the recording keeps the
// full layer all along.
func TestSimulcastGridGetsSmallLayerAndFocusTheFull(t *testing.T) {
	db := storetestDB(t)
	attempt := attemptRow(t, db)
	dir := t.TempDir()
	svc, err := media.New(media.Config{DB: db, Bus: store.NewMemBus(), DataDir: dir, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	pub := newSimulcastPublisher(t, true)
	pub.Connect(svc, attempt, media.PC)
	go pub.Send(12 * time.Second)

	vp := openViewPage(t, svc)
	vp.v.Allow([]int64{attempt})
	stream := media.StreamID(attempt, media.PC)
	vp.waitWidth(t, stream, 160, 5*time.Second)
	began := time.Now()
	vp.v.Focus(attempt)
	vp.waitWidth(t, stream, 640, 2*time.Second)
	t.Logf("full layer after %s", time.Since(began))
	vp.v.Focus(0)
	vp.waitWidth(t, stream, 160, 2*time.Second)
	vp.mu.Lock()
	gaps := vp.seqGap
	vp.mu.Unlock()
	// A switch waits for a key frame of the new layer and continues the
	// old numbering, so the viewer sees no jump (loopback loses nothing).
	if gaps > 2 {
		t.Errorf("%d breaks in the forwarded sequence over two switches", gaps)
	}
	time.Sleep(time.Second)
	svc.Close()
	var rec store.Recording
	if err := db.Where("attempt_id = ?", attempt).Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	if out := ffprobe(t, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0", rec.Path); strings.TrimSpace(out) != "640,480" {
		t.Fatalf("recorded size %q, want the full layer 640,480", out)
	}
}

// Simulcast layers other than "h" and "l", or a small layer alone, are
// refused before any connection is made.
func TestSimulcastLayersChecked(t *testing.T) {
	svc, err := media.New(media.Config{Bus: store.NewMemBus(), DataDir: t.TempDir(), LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	pub := newSimulcastPublisher(t, false)
	offer, _ := pub.PC.CreateOffer(nil)
	if !strings.Contains(offer.SDP, "a=rid:h send") || !strings.Contains(offer.SDP, "a=rid:l send") {
		t.Fatalf("the publisher offers no simulcast:\n%s", offer.SDP)
	}
	for name, sdp := range map[string]string{
		"unknown layer": strings.ReplaceAll(offer.SDP, "l send", "q send"),
		"no full layer": strings.ReplaceAll(strings.ReplaceAll(offer.SDP, "a=rid:h send\r\n", ""), "h;l", "l"),
	} {
		if _, err := svc.Publish(t.Context(), 1, media.PC, sdp, nil); !errors.Is(err, media.ErrBadSDP) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := svc.Publish(t.Context(), 1, media.PC, offer.SDP, nil); err != nil {
		t.Fatalf("the two layers: %v", err)
	}
}

// Behind 1:1 NAT (--ice-public-ip) the server announces the public address
// in its candidates instead of the local one.
func TestPublicIPAnnounced(t *testing.T) {
	svc, err := media.New(media.Config{Bus: store.NewMemBus(), DataDir: t.TempDir(), LoopbackOnly: true, PublicIP: "203.0.113.7"})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	pub := newPublisher(t, false)
	offer, _ := pub.PC.CreateOffer(nil)
	cands := make(chan string, 8)
	if _, err := svc.Publish(t.Context(), 1, media.PC, offer.SDP, func(c map[string]any) { cands <- c["candidate"].(string) }); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-cands:
		if !strings.Contains(c, "203.0.113.7") || strings.Contains(c, "127.0.0.1") {
			t.Fatalf("candidate %q does not announce the public address", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no candidate")
	}
}
