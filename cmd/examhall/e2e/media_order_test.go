package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// A browser trickles its candidates right after its offer; the server
// answers the offer beside the socket's reader, so the candidates may
// arrive first. They must reach the new connection, not be refused.
func TestCandidatesBeforeTheAnswerAreKept(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	c := e.connect(e.cands[0])
	c.start()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	track, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	if _, err := pc.AddTrack(track); err != nil {
		t.Fatal(err)
	}
	offer, _ := pc.CreateOffer(nil)
	pc.SetLocalDescription(offer)
	c.send(map[string]any{"type": "media_offer", "id": "mo", "sdp": offer.SDP})
	for i := range 3 {
		c.send(map[string]any{"type": "media_ice", "id": fmt.Sprint("ice", i),
			"candidate": map[string]any{"candidate": fmt.Sprintf("candidate:1 1 udp 2130706431 127.0.0.1 %d typ host", 50000+i), "sdpMid": "0", "sdpMLineIndex": 0}})
	}
	c.await("the answer", is("media_answer", "id", "mo"))
	// Errors, if any, come as replies to the candidates' ids.
	deadline := time.After(time.Second)
	for {
		select {
		case m := <-c.msgs:
			if m["type"] == "error" {
				t.Fatalf("a candidate sent before the answer was refused: %v", m)
			}
		case <-deadline:
			for _, m := range c.pending {
				if m["type"] == "error" {
					t.Fatalf("a candidate sent before the answer was refused: %v", m)
				}
			}
			return
		}
	}
}
