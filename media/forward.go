package media

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Forwarding: an SFU. Every received track is copied, packet for packet
// (no decoding, no mixing), to the viewers allowed to see it: the
// invigilators' consoles. A viewer has one connection; tracks of its
// candidates are added and removed as they come and go, with the server
// offering each change. Stream ids are "a<attempt>-<device>", so a page
// knows whose camera a track is.

// source is a received track as viewers get it.
type source struct {
	peer    *Peer
	kind    string // "video" or "audio"
	local   *webrtc.TrackLocalStaticRTP
	ssrc    uint32
	viewers atomic.Int64 // viewers it is forwarded to, for the metrics
}

func (src *source) key() string {
	return fmt.Sprintf("%d/%s/%s", src.peer.attempt, src.peer.device, src.kind)
}

// StreamID names the stream of an attempt's device for pages.
func StreamID(attempt int64, device string) string { return fmt.Sprintf("a%d-%s", attempt, device) }

// Viewer is one console's connection, receiving its candidates' cameras.
type Viewer struct {
	s       *Service
	pc      *webrtc.PeerConnection
	send    func(v any)
	mu      sync.Mutex
	only    string // when set, only this device's tracks
	allowed map[int64]bool
	senders map[string]*webrtc.RTPSender
	sources map[string]*source
	// negotiating is set while an offer waits for its answer; pending
	// says another change came meanwhile.
	negotiating, pending bool
	closed               bool
}

// View opens a viewer. send carries its signaling to the page:
// {"type":"view_offer","sdp"} and {"type":"view_ice","candidate"}.
func (s *Service) View(send func(v any)) (*Viewer, error) { return s.ViewDevice("", send) }

// ViewDevice opens a viewer of one device's tracks only (the PC page shows
// the phone's camera).
func (s *Service) ViewDevice(device string, send func(v any)) (*Viewer, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &Viewer{s: s, pc: pc, send: send, only: device, allowed: map[int64]bool{}, senders: map[string]*webrtc.RTPSender{}, sources: map[string]*source{}}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		j := c.ToJSON()
		send(map[string]any{"type": "view_ice", "candidate": map[string]any{"candidate": j.Candidate, "sdpMid": j.SDPMid, "sdpMLineIndex": j.SDPMLineIndex}})
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed {
			v.Close()
		}
	})
	s.mu.Lock()
	s.viewers[v] = struct{}{}
	s.mu.Unlock()
	return v, nil
}

// Allow sets the attempts whose cameras the viewer may see, adding and
// removing tracks to match.
func (v *Viewer) Allow(attempts []int64) {
	v.mu.Lock()
	v.allowed = map[int64]bool{}
	for _, a := range attempts {
		v.allowed[a] = true
	}
	v.mu.Unlock()
	v.sync()
}

// sync makes the viewer's tracks match the allowed sources, and offers the
// change.
func (v *Viewer) sync() {
	v.s.mu.Lock()
	srcs := make([]*source, 0, len(v.s.sources))
	for _, src := range v.s.sources {
		srcs = append(srcs, src)
	}
	v.s.mu.Unlock()
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	want := map[string]*source{}
	for _, src := range srcs {
		if v.allowed[src.peer.attempt] && (v.only == "" || v.only == src.peer.device) {
			want[src.key()] = src
		}
	}
	changed := false
	for k, sender := range v.senders {
		if want[k] == nil {
			v.pc.RemoveTrack(sender)
			delete(v.senders, k)
			v.sources[k].viewers.Add(-1)
			delete(v.sources, k)
			changed = true
		}
	}
	var added []*source
	for k, src := range want {
		if v.senders[k] != nil {
			continue
		}
		sender, err := v.pc.AddTrack(src.local)
		if err != nil {
			v.s.log.Warn("forward track", "err", err)
			continue
		}
		v.senders[k] = sender
		v.sources[k] = src
		src.viewers.Add(1)
		added = append(added, src)
		changed = true
		go v.readRTCP(sender, src)
	}
	v.mu.Unlock()
	for _, src := range added {
		if src.kind == "video" {
			src.peer.keyFrameNow(src.ssrc) // so the new viewer sees a picture at once
		}
	}
	if changed {
		v.negotiate()
	}
}

// readRTCP passes a viewer's picture loss reports to the source, rate
// limited, and keeps the sender's reports flowing.
func (v *Viewer) readRTCP(sender *webrtc.RTPSender, src *source) {
	var last time.Time
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if time.Since(last) > time.Second {
					last = time.Now()
					src.peer.keyFrameNow(src.ssrc)
				}
			}
		}
	}
}

func (v *Viewer) negotiate() {
	v.mu.Lock()
	if v.negotiating || v.closed {
		v.pending = true
		v.mu.Unlock()
		return
	}
	v.negotiating, v.pending = true, false
	v.mu.Unlock()
	offer, err := v.pc.CreateOffer(nil)
	if err == nil {
		err = v.pc.SetLocalDescription(offer)
	}
	if err != nil {
		v.s.log.Warn("viewer offer", "err", err)
		v.mu.Lock()
		v.negotiating = false
		v.mu.Unlock()
		return
	}
	v.send(map[string]any{"type": "view_offer", "sdp": offer.SDP})
}

// Answer takes the page's answer to the last offer.
func (v *Viewer) Answer(sdp string) error {
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	v.mu.Lock()
	v.negotiating = false
	again := v.pending
	v.mu.Unlock()
	if again {
		v.negotiate()
	}
	return nil
}

// AddICECandidate adds the page's candidate.
func (v *Viewer) AddICECandidate(c map[string]any) error {
	init, err := candidateInit(c)
	if err != nil {
		return err
	}
	if err := v.pc.AddICECandidate(init); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}

// Close ends the viewer.
func (v *Viewer) Close() {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	v.closed = true
	for k, src := range v.sources {
		src.viewers.Add(-1)
		delete(v.sources, k)
	}
	v.mu.Unlock()
	v.s.mu.Lock()
	delete(v.s.viewers, v)
	v.s.mu.Unlock()
	v.pc.Close()
}

// addSource makes a received track available to viewers.
func (s *Service) addSource(src *source) {
	s.mu.Lock()
	s.sources[src.key()] = src
	viewers := s.viewerList()
	s.mu.Unlock()
	for _, v := range viewers {
		v.sync()
	}
}

func (s *Service) removeSources(p *Peer) {
	s.mu.Lock()
	for k, src := range s.sources {
		if src.peer == p {
			delete(s.sources, k)
		}
	}
	viewers := s.viewerList()
	s.mu.Unlock()
	for _, v := range viewers {
		v.sync()
	}
}

func (s *Service) viewerList() []*Viewer {
	out := make([]*Viewer, 0, len(s.viewers))
	for v := range s.viewers {
		out = append(out, v)
	}
	return out
}
