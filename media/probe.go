package media

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Live reports whether a device of an attempt is sending video now.
func (s *Service) Live(attemptID int64, device string) bool {
	s.mu.Lock()
	p := s.peers[fmt.Sprintf("%d/%s", attemptID, device)]
	s.mu.Unlock()
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.videoAt.IsZero() && time.Since(p.videoAt) < s.cfg.LostAfter
}

// probeLife is how long a device check's test connection may live, and
// maxProbes how many one user may have at once.
const (
	probeLife = 15 * time.Second
	maxProbes = 2
)

// A probe is the device check's short test publish: a connection that
// counts the packets it receives, records nothing and closes itself.
type probe struct {
	owner   int64
	pc      *webrtc.PeerConnection
	packets atomic.Int64
	state   atomic.Value // webrtc.PeerConnectionState
}

// ProbeResult is what a test publish reached.
type ProbeResult struct {
	State   string `json:"state"`   // the server side's connection state
	Packets int64  `json:"packets"` // video packets received
}

type probes struct {
	mu   sync.Mutex
	byID map[string]*probe
}

// Probe answers the offer of a device check's test publish (one camera,
// no microphone, every ICE candidate in the offer). The answer carries the
// server's candidates, so no trickling is needed. The connection closes
// itself after 15 s.
func (s *Service) Probe(ctx context.Context, owner int64, offer string) (id, answer string, err error) {
	if _, _, err := checkOffer(offer, Phone); err != nil {
		return "", "", err
	}
	s.probes.mu.Lock()
	live := 0
	for _, p := range s.probes.byID {
		if p.owner == owner {
			live++
		}
	}
	s.probes.mu.Unlock()
	if live >= maxProbes {
		return "", "", ErrProbeBusy
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", "", err
	}
	p := &probe{owner: owner, pc: pc}
	p.state.Store(webrtc.PeerConnectionStateNew)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) { p.state.Store(st) })
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := t.ReadRTP(); err != nil {
				return
			}
			p.packets.Add(1)
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		pc.Close()
		return "", "", fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	a, err := pc.CreateAnswer(nil)
	if err != nil {
		pc.Close()
		return "", "", fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(a); err != nil {
		pc.Close()
		return "", "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		pc.Close()
		return "", "", ctx.Err()
	}
	b := make([]byte, 16)
	rand.Read(b)
	id = hex.EncodeToString(b)
	s.probes.mu.Lock()
	if s.probes.byID == nil {
		s.probes.byID = map[string]*probe{}
	}
	s.probes.byID[id] = p
	s.probes.mu.Unlock()
	time.AfterFunc(probeLife, func() {
		s.probes.mu.Lock()
		delete(s.probes.byID, id)
		s.probes.mu.Unlock()
		pc.Close()
	})
	return id, pc.LocalDescription().SDP, nil
}

// ProbeResult is how far owner's test publish id got; ErrNoPeer when there
// is no such probe of theirs (or it has ended).
func (s *Service) ProbeResult(owner int64, id string) (ProbeResult, error) {
	s.probes.mu.Lock()
	p := s.probes.byID[id]
	s.probes.mu.Unlock()
	if p == nil || p.owner != owner {
		return ProbeResult{}, ErrNoPeer
	}
	return ProbeResult{State: p.state.Load().(webrtc.PeerConnectionState).String(), Packets: p.packets.Load()}, nil
}
