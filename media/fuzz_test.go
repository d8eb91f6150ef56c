package media

import (
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// FuzzCheckOffer: any SDP a device sends is refused or counted within the
// device's limits, never a panic.
func FuzzCheckOffer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=rid:h send\r\na=rid:l send\r\n", PC)
	f.Add("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", Phone)
	f.Add("garbage", PC)
	// "a=rid:" inside another attribute's value is not a layer (found by
	// CI's fuzzing against a check that only searched the text).
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=x:a=rid:l\r\n", PC)
	f.Fuzz(func(t *testing.T, offer, device string) {
		video, audio, err := checkOffer(offer, device)
		if err != nil {
			return
		}
		if video != 1 || audio > 1 || (device == Phone && audio > 0) {
			t.Fatalf("accepted %d cameras and %d microphones from %q", video, audio, device)
		}
		var sd sdp.SessionDescription
		if err := sd.UnmarshalString(offer); err != nil {
			t.Fatalf("accepted an offer the SDP parser refuses: %v", err)
		}
		for _, m := range sd.MediaDescriptions {
			_, recv := m.Attribute("recvonly")
			_, off := m.Attribute("inactive")
			if m.MediaName.Media != "video" || recv || off {
				continue
			}
			layers := map[string]bool{}
			for _, a := range m.Attributes {
				if a.Key == "rid" {
					layers[strings.Fields(a.Value + " -")[0]] = true
				}
			}
			if len(layers) > 0 && !layers[LayerHigh] {
				t.Fatalf("accepted layers %v without the full one", layers)
			}
		}
	})
}

// FuzzCandidate: any trickled ICE candidate is refused or taken as one.
func FuzzCandidate(f *testing.F) {
	f.Add("candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host", "0", 0)
	f.Add("", "", -1)
	f.Fuzz(func(t *testing.T, cand, mid string, line int) {
		init, err := candidateInit(map[string]any{"candidate": cand, "sdpMid": mid, "sdpMLineIndex": line})
		if err == nil && init.Candidate == "" {
			t.Fatal("an empty candidate accepted")
		}
	})
}
