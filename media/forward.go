package media

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Forwarding: an SFU. Every received track is copied, packet for packet
// (no decoding, no mixing), to the viewers allowed to see it: the
// invigilators' consoles. A viewer has one connection; tracks of its
// candidates are added and removed as they come and go, with the server
// offering each change. Stream ids are "a<attempt>-<device>", so a page
// knows whose camera a track is.
//
// Cameras may send two layers (simulcast, RTP stream ids "h" and "l"):
// each viewer gets one layer of each camera, the small one for a grid
// tile and the full one for the candidate it has opened (Focus), and
// switches between them at a key frame, renumbering packets so its
// decoder sees one unbroken stream. The recording keeps the full layer.

// Layers a camera may send.
const (
	LayerHigh = "h"
	LayerLow  = "l"
	// layerOnly is a camera that sends one layer (no simulcast).
	layerOnly = ""
)

// source is a received camera or microphone as viewers get it, with the
// layers it arrives in.
type source struct {
	peer    *Peer
	kind    string // "video" or "audio"
	viewers atomic.Int64
	mu      sync.Mutex
	layers  map[string]uint32 // layer → its SSRC
	downs   map[*down]struct{}
	// out is what forward sends to, rebuilt (never changed in place) when
	// a viewer, a layer or a wish changes, so a packet costs no allocation.
	out []route
}

// route is a viewer's track and the layer it gets.
type route struct {
	d      *down
	target string
}

// rebuild remakes out from downs; src.mu is held.
func (src *source) rebuild() {
	out := make([]route, 0, len(src.downs))
	for d := range src.downs {
		// A microphone is heard only from the candidate opened large:
		// fifteen silent ones would cost a console as much as its tiles.
		if src.kind == "audio" && d.want != LayerHigh {
			continue
		}
		out = append(out, route{d, d.target})
	}
	src.out = out
}

func (src *source) key() string {
	return fmt.Sprintf("%d/%s/%s", src.peer.attempt, src.peer.device, src.kind)
}

// pick is the layer a viewer wanting want gets: that one when it is sent,
// else the full one, else whatever is.
func (src *source) pick(want string) string {
	for _, l := range []string{want, layerOnly, LayerHigh, LayerLow} {
		if _, ok := src.layers[l]; ok {
			return l
		}
	}
	return want
}

// setLayer adds (ssrc != 0) or removes a layer and moves viewers to what
// they can now get.
func (src *source) setLayer(layer string, ssrc uint32) {
	src.mu.Lock()
	if ssrc != 0 {
		src.layers[layer] = ssrc
	} else {
		delete(src.layers, layer)
	}
	var asks []uint32
	for d := range src.downs {
		if t := src.pick(d.want); t != d.target {
			d.target = t
			asks = append(asks, src.layers[t])
		}
	}
	src.rebuild()
	src.mu.Unlock()
	for _, s := range asks {
		src.peer.keyFrameNow(s)
	}
}

// forward copies one packet of a layer to every viewer on that layer.
func (src *source) forward(layer string, pkt *rtp.Packet) {
	src.mu.Lock()
	downs := src.out
	src.mu.Unlock()
	key := src.kind == "audio" || isKeyFrameStart(pkt.Payload)
	n := 0
	for _, x := range downs {
		if x.d.write(layer, x.target, key, pkt) {
			n++
		}
	}
	if n > 0 {
		src.peer.s.metrics.forwarded.Add(float64(n))
		src.peer.s.metrics.forwardedBytes.Add(float64(n) * float64(len(pkt.Payload)))
	}
}

// isKeyFrameStart says whether a VP8 RTP payload starts a key frame.
func isKeyFrameStart(p []byte) bool {
	if len(p) < 1 || p[0]&0x10 == 0 || p[0]&0x07 != 0 { // S bit, partition 0
		return false
	}
	i := 1
	if p[0]&0x80 != 0 { // X: extension bits follow
		if len(p) < 2 {
			return false
		}
		x := p[1]
		i++
		if x&0x80 != 0 { // I: picture id, 1 or 2 bytes
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x30 != 0 { // T or K: one byte
			i++
		}
	}
	return len(p) > i && p[i]&0x01 == 0 // P bit 0: a key frame
}

// down is one source as one viewer receives it: its own track, so each
// viewer can be on its own layer.
type down struct {
	local  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender
	src    *source
	want   string // the layer the viewer asked for (under src.mu)
	target string // the layer it gets (under src.mu)

	mu      sync.Mutex
	cur     string // the layer being sent; valid when started
	started bool
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16
	lastTS  uint32
}

// write sends pkt when it is of the layer this viewer is on, switching
// to the target layer at its first key frame. It says whether it sent.
func (d *down) write(layer, target string, key bool, pkt *rtp.Packet) bool {
	d.mu.Lock()
	if !d.started || d.cur != layer {
		if layer != target || !key {
			d.mu.Unlock()
			return false
		}
		if d.started {
			// Continue the numbering where the old layer stopped, a frame
			// later, so the receiver sees no gap and no jump back.
			d.seqOff = d.lastSeq + 1 - pkt.SequenceNumber
			d.tsOff = d.lastTS + 3000 - pkt.Timestamp
		} else {
			d.seqOff, d.tsOff = 0, 0
		}
		d.cur, d.started = layer, true
		d.lastSeq, d.lastTS = pkt.SequenceNumber+d.seqOff-1, pkt.Timestamp+d.tsOff
	}
	seq, ts := pkt.SequenceNumber+d.seqOff, pkt.Timestamp+d.tsOff
	if diff := seq - d.lastSeq; diff != 0 && diff < 0x8000 {
		d.lastSeq, d.lastTS = seq, ts
	}
	d.mu.Unlock()
	out := &rtp.Packet{Header: pkt.Header, Payload: pkt.Payload}
	out.SequenceNumber, out.Timestamp = seq, ts
	// The publisher's header extensions (its ids for mid and rid) mean
	// nothing on the viewer's connection.
	out.Extension, out.Extensions = false, nil
	return d.local.WriteRTP(out) == nil
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
	focus   int64  // the attempt shown at full quality
	layer   string // the layer of every other attempt
	downs   map[string]*down
	// negotiating is set while an offer waits for its answer (offer counts
	// offers); pending says another change came meanwhile.
	negotiating, pending bool
	offer                int
	closed               bool
}

// answerWait is how long an offer waits for its answer before the viewer
// offers again.
const answerWait = 10 * time.Second

// View opens a console's viewer: every camera at the small layer (when
// the camera sends one) until Focus picks a candidate. send carries its
// signaling to the page: {"type":"view_offer","sdp"} and
// {"type":"view_ice","candidate"}.
func (s *Service) View(send func(v any)) (*Viewer, error) { return s.newViewer("", LayerLow, send) }

// ViewDevice opens a viewer of one device's tracks only, at full quality
// (the PC page shows the phone's camera).
func (s *Service) ViewDevice(device string, send func(v any)) (*Viewer, error) {
	return s.newViewer(device, LayerHigh, send)
}

func (s *Service) newViewer(device, layer string, send func(v any)) (*Viewer, error) {
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
	v := &Viewer{s: s, pc: pc, send: send, only: device, layer: layer, allowed: map[int64]bool{}, downs: map[string]*down{}}
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

// Focus shows one attempt's cameras at full quality and every other at
// the small layer; 0 focuses none.
func (v *Viewer) Focus(attempt int64) {
	v.mu.Lock()
	v.focus = attempt
	downs := make([]*down, 0, len(v.downs))
	for _, d := range v.downs {
		downs = append(downs, d)
	}
	v.mu.Unlock()
	for _, d := range downs {
		v.setWant(d)
	}
}

// wantFor is the layer the viewer wants of an attempt's cameras.
func (v *Viewer) wantFor(attempt int64) string {
	if attempt == v.focus {
		return LayerHigh
	}
	return v.layer
}

// setWant points a viewer's track at the layer it now wants, asking the
// camera for a key frame to switch at.
func (v *Viewer) setWant(d *down) {
	v.mu.Lock()
	want := v.wantFor(d.src.peer.attempt)
	v.mu.Unlock()
	src := d.src
	src.mu.Lock()
	d.want = want
	t := src.pick(want)
	changed := t != d.target
	d.target = t
	ssrc := src.layers[t]
	src.rebuild()
	src.mu.Unlock()
	if changed && src.kind == "video" {
		src.peer.keyFrameNow(ssrc)
	}
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
	for k, d := range v.downs {
		if want[k] != d.src {
			v.pc.RemoveTrack(d.sender)
			d.src.detach(d)
			delete(v.downs, k)
			changed = true
		}
	}
	var added []*down
	for k, src := range want {
		if v.downs[k] != nil {
			continue
		}
		local, err := webrtc.NewTrackLocalStaticRTP(src.codec(), src.kind, StreamID(src.peer.attempt, src.peer.device))
		if err != nil {
			v.s.log.Warn("forward track", "err", err)
			continue
		}
		sender, err := v.pc.AddTrack(local)
		if err != nil {
			v.s.log.Warn("forward track", "err", err)
			continue
		}
		d := &down{local: local, sender: sender, src: src, want: v.wantFor(src.peer.attempt)}
		v.downs[k] = d
		added = append(added, d)
		changed = true
	}
	v.mu.Unlock()
	for _, d := range added {
		d.src.attach(d)
		go v.readRTCP(d)
	}
	if changed {
		v.negotiate()
	}
}

// attach starts sending the source to a viewer's track, asking the
// camera for a key frame so the new viewer sees a picture at once.
func (src *source) attach(d *down) {
	src.mu.Lock()
	d.target = src.pick(d.want)
	ssrc := src.layers[d.target]
	src.downs[d] = struct{}{}
	src.rebuild()
	src.mu.Unlock()
	src.viewers.Add(1)
	if src.kind == "video" {
		src.peer.keyFrameNow(ssrc)
	}
}

func (src *source) detach(d *down) {
	src.mu.Lock()
	_, ok := src.downs[d]
	delete(src.downs, d)
	src.rebuild()
	src.mu.Unlock()
	if ok {
		src.viewers.Add(-1)
	}
}

// codec is what the source's tracks carry.
func (src *source) codec() webrtc.RTPCodecCapability {
	if src.kind == "audio" {
		return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	}
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
}

// readRTCP passes a viewer's picture loss reports to the layer it is on,
// rate limited, and keeps the sender's reports flowing.
func (v *Viewer) readRTCP(d *down) {
	var last time.Time
	for {
		pkts, _, err := d.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if time.Since(last) > time.Second {
					last = time.Now()
					d.src.mu.Lock()
					ssrc := d.src.layers[d.target]
					d.src.mu.Unlock()
					d.src.peer.keyFrameNow(ssrc)
				}
			}
		}
	}
}

// negotiate offers the viewer's tracks to the page. Offers never cross:
// while one waits for its answer, changes are collected and offered after
// it; an offer whose answer never comes is made again.
func (v *Viewer) negotiate() {
	v.mu.Lock()
	if v.negotiating || v.closed {
		v.pending = true
		v.mu.Unlock()
		return
	}
	v.negotiating, v.pending = true, false
	v.offer++
	n := v.offer
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
	v.awaitAnswer(n)
}

// awaitAnswer offers the same again if offer n is still unanswered after
// answerWait (the page lost it, or its answer was refused), until an
// answer comes or the viewer closes.
func (v *Viewer) awaitAnswer(n int) {
	time.AfterFunc(answerWait, func() {
		v.mu.Lock()
		late := v.negotiating && v.offer == n && !v.closed
		v.mu.Unlock()
		if !late {
			return
		}
		offer := v.pc.PendingLocalDescription()
		if offer == nil {
			return
		}
		v.s.log.Warn("viewer answer missing; offering again", "wait", answerWait)
		v.send(map[string]any{"type": "view_offer", "sdp": offer.SDP})
		v.awaitAnswer(n)
	})
}

// Answer takes the page's answer to the last offer. A bad answer changes
// nothing: the offer stays open and is made again after answerWait.
func (v *Viewer) Answer(sdp string) error {
	v.mu.Lock()
	waiting := v.negotiating
	v.mu.Unlock()
	if !waiting {
		return fmt.Errorf("%w: no offer is waiting for an answer", ErrBadSDP)
	}
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
	downs := v.downs
	v.downs = map[string]*down{}
	v.mu.Unlock()
	for _, d := range downs {
		d.src.detach(d)
	}
	v.s.mu.Lock()
	delete(v.s.viewers, v)
	v.s.mu.Unlock()
	v.pc.Close()
}

// sourceFor returns the peer's source of a kind, making it available to
// viewers when it is new.
func (s *Service) sourceFor(p *Peer, kind string) *source {
	key := fmt.Sprintf("%d/%s/%s", p.attempt, p.device, kind)
	s.mu.Lock()
	src := s.sources[key]
	fresh := src == nil || src.peer != p
	if fresh {
		src = &source{peer: p, kind: kind, layers: map[string]uint32{}, downs: map[*down]struct{}{}}
		s.sources[key] = src
	}
	viewers := s.viewerList()
	s.mu.Unlock()
	if fresh {
		for _, v := range viewers {
			v.sync()
		}
	}
	return src
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
