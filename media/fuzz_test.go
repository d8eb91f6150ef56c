package media

import (
	"strings"
	"testing"
)

// FuzzCheckOffer: any SDP a device sends is refused or counted within the
// device's limits, never a panic.
func FuzzCheckOffer(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=rid:h send\r\na=rid:l send\r\n", PC)
	f.Add("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", Phone)
	f.Add("garbage", PC)
	f.Fuzz(func(t *testing.T, offer, device string) {
		video, audio, err := checkOffer(offer, device)
		if err != nil {
			return
		}
		if video != 1 || audio > 1 || (device == Phone && audio > 0) {
			t.Fatalf("accepted %d cameras and %d microphones from %q", video, audio, device)
		}
		if strings.Contains(offer, "a=rid:") && !strings.Contains(offer, "a=rid:h") {
			t.Fatalf("accepted layers without the full one")
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
