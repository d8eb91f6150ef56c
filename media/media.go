// Package media is examhall's WebRTC service: it takes each candidate's two
// cameras (the PC's with its microphone, the phone's without), records them
// to WebM as they arrive, watches their health, and reports lost and
// restored video as signals. pion types stay inside this package.
package media

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/examhall/examhall/media/vision"
	"github.com/examhall/examhall/store"
)

// Devices of a candidate.
const (
	PC    = "pc"
	Phone = "phone"
)

// Config configures the media service.
type Config struct {
	DB      *store.DB
	Bus     store.Bus
	Logger  *slog.Logger
	DataDir string
	// ICEServers are STUN/TURN URLs handed to browsers.
	ICEServers []string
	// UDPPort, when set, carries all media on one UDP port (ICE UDP mux).
	UDPPort int
	// PublicIP is announced for media behind 1:1 NAT.
	PublicIP string
	// LoopbackOnly keeps ICE on 127.0.0.1 (tests, single-machine demos).
	LoopbackOnly bool
	// LostAfter is how long a video may go without packets before it is
	// reported lost (default 2 s).
	LostAfter time.Duration
	// GoneAfter is how long a device may send no video before its
	// connection is released and its recording closed (default 30 s).
	GoneAfter time.Duration
	// KeyFrameEvery is how often a key frame is asked for (default 3 s).
	KeyFrameEvery time.Duration
	// RollEvery is how long one file lasts before a new one starts (default 5 min).
	RollEvery time.Duration
	// FaceCheck counts faces on every camera's key frames (media/vision):
	// no face on the PC camera and several people on either become signals,
	// with the frame kept under DataDir/stills as evidence.
	FaceCheck bool
	// FaceEvery is the least time between two analysed key frames of a
	// camera (default 2.5 s, so each periodic key frame is analysed).
	FaceEvery time.Duration
	Metrics   prometheus.Registerer
	// Blobs, when set, receives each closed recording segment (removed
	// from disk once stored), and segments last 30 s unless RollEvery says
	// otherwise; nil keeps recordings on local disk.
	Blobs store.Blobs
	// NodeID names this node on its recordings, so each node repairs and
	// uploads only the files on its own disk.
	NodeID string
}

// Service ingests, records and watches candidates' media.
type Service struct {
	cfg     Config
	api     *webrtc.API
	log     *slog.Logger
	udp     net.PacketConn
	metrics *metrics
	faces   *vision.Analyzer // nil when FaceCheck is off
	stop    context.CancelFunc

	mu      sync.Mutex
	peers   map[string]*Peer // by attempt/device
	sources map[string]*source
	viewers map[*Viewer]struct{}
	closed  bool
	probes  probes // device checks' test publishes
	tracks  atomic.Int64
	up      *uploads // nil without object storage
	stills  *store.Files
}

// Tracks is how many media tracks the node is receiving (its load in the
// cluster's heartbeat).
func (s *Service) Tracks() int { return int(s.tracks.Load()) }

type metrics struct {
	tracks         prometheus.Gauge
	packets        *prometheus.CounterVec
	bytes          *prometheus.CounterVec
	lost           prometheus.Counter
	written        prometheus.Counter
	files          prometheus.Counter
	forwarded      prometheus.Counter
	forwardedBytes prometheus.Counter
	plis           prometheus.Counter
	detection      prometheus.Histogram
	analysed       prometheus.CounterFunc
	skipped        prometheus.CounterFunc
}

// New builds the media engine: VP8 and Opus only, NACK and RTCP reports,
// loopback candidates when asked, one UDP port when configured.
func New(cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.GoneAfter == 0 {
		cfg.GoneAfter = 30 * time.Second
	}
	if cfg.LostAfter == 0 {
		cfg.LostAfter = 2 * time.Second
	}
	if cfg.KeyFrameEvery == 0 {
		cfg.KeyFrameEvery = 3 * time.Second
	}
	if cfg.RollEvery == 0 {
		cfg.RollEvery = 5 * time.Minute
		if cfg.Blobs != nil {
			cfg.RollEvery = SegmentEvery
		}
	}
	m, reg, err := newMediaEngine()
	if err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// A dead peer is noticed in seconds, not the default 25 s.
	se.SetICETimeouts(3*time.Second, 6*time.Second, time.Second)
	if cfg.LoopbackOnly {
		se.SetIncludeLoopbackCandidate(true)
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	if cfg.PublicIP != "" {
		// Behind 1:1 NAT: host candidates carry the public address.
		rule := webrtc.ICEAddressRewriteRule{External: []string{cfg.PublicIP}, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace}
		if err := se.SetICEAddressRewriteRules(rule); err != nil {
			return nil, fmt.Errorf("media: public IP %q: %w", cfg.PublicIP, err)
		}
	}
	s := &Service{cfg: cfg, log: cfg.Logger, peers: map[string]*Peer{}, sources: map[string]*source{}, viewers: map[*Viewer]struct{}{},
		stills: &store.Files{Dir: filepath.Join(cfg.DataDir, "stills"), Prefix: "stills", Blobs: cfg.Blobs}}
	if cfg.UDPPort > 0 {
		if err := s.listenUDP(&se); err != nil {
			return nil, err
		}
	}
	s.api = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	s.metrics = newMetrics()
	if cfg.FaceCheck {
		if err := s.startFaceCheck(); err != nil {
			return nil, err
		}
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{s.metrics.tracks, s.metrics.packets, s.metrics.bytes, s.metrics.lost, s.metrics.written, s.metrics.files, s.metrics.forwarded, s.metrics.forwardedBytes, s.metrics.plis, s.metrics.detection} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, err
			}
		}
	}
	s.startUploads()
	return s, nil
}

// newMediaEngine registers VP8 and Opus only, the simulcast header
// extensions, and pion's default interceptors (NACK, RTCP reports).
func newMediaEngine() (*webrtc.MediaEngine, *interceptor.Registry, error) {
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}, {Type: "goog-remb"}}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, nil, err
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, err
	}
	// Simulcast: a camera's layers are told apart by their RTP stream id.
	for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, nil, err
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, nil, err
	}
	return m, reg, nil
}

// listenUDP opens the one UDP port that carries every device's media,
// with a receive buffer large enough to lose nothing under load.
func (s *Service) listenUDP(se *webrtc.SettingEngine) error {
	host := ""
	if s.cfg.LoopbackOnly {
		host = "127.0.0.1"
	}
	conn, err := net.ListenPacket("udp4", fmt.Sprintf("%s:%d", host, s.cfg.UDPPort))
	if err != nil {
		return fmt.Errorf("media: listen on UDP port %d: %w", s.cfg.UDPPort, err)
	}
	s.udp = conn
	if got, err := setReceiveBuffer(conn.(*net.UDPConn), udpBuffer); err != nil || got < udpBuffer {
		s.log.Warn("media: the kernel gave the UDP port a smaller receive buffer than asked; under load packets are dropped (raise net.core.rmem_max, or run with CAP_NET_ADMIN)",
			"asked", udpBuffer, "got", got, "err", err)
	}
	se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, conn))
	return nil
}

func newMetrics() *metrics {
	return &metrics{
		tracks:         prometheus.NewGauge(prometheus.GaugeOpts{Name: "examhall_media_tracks", Help: "Media tracks being received."}),
		packets:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: "examhall_media_rtp_packets_total", Help: "RTP packets received, by kind."}, []string{"kind"}),
		bytes:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: "examhall_media_rtp_bytes_total", Help: "RTP payload bytes received, by kind."}, []string{"kind"}),
		lost:           prometheus.NewCounter(prometheus.CounterOpts{Name: "examhall_media_packets_lost_total", Help: "RTP packets missing (sequence gaps)."}),
		written:        prometheus.NewCounter(prometheus.CounterOpts{Name: "examhall_media_recording_bytes_total", Help: "Bytes of media written to recordings."}),
		plis:           prometheus.NewCounter(prometheus.CounterOpts{Name: "examhall_media_plis_total", Help: "Key frames asked for (PLI)."}),
		files:          prometheus.NewCounter(prometheus.CounterOpts{Name: "examhall_media_recordings_opened_total", Help: "Recording files opened."}),
		forwarded:      prometheus.NewCounter(prometheus.CounterOpts{Name: "examhall_media_rtp_packets_forwarded_total", Help: "RTP packets copied to viewers (one per viewer)."}),
		forwardedBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "examhall_media_rtp_bytes_forwarded_total", Help: "RTP payload bytes copied to viewers."}),
		detection: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "examhall_media_drop_detection_seconds",
			Help: "From a video's last packet to its loss being reported.", Buckets: []float64{.5, 1, 1.5, 2, 2.5, 3, 4, 5}}),
	}
}

// startFaceCheck starts the server's face check and its metrics.
func (s *Service) startFaceCheck() error {
	det, err := vision.NewDetector()
	if err != nil {
		return err
	}
	s.faces = vision.NewAnalyzer(vision.Config{Detector: det, StillDir: filepath.Join(s.cfg.DataDir, "stills"), MinGap: s.cfg.FaceEvery, Signal: s.faceSignal, Logger: s.cfg.Logger})
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go s.faces.Run(ctx)
	s.metrics.analysed = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "examhall_media_face_frames_analysed_total",
		Help: "Key frames whose faces were counted."}, func() float64 { return float64(s.faces.Analysed.Load()) })
	s.metrics.skipped = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "examhall_media_face_frames_dropped_total",
		Help: "Key frames not analysed because a newer one of their camera replaced them before their turn (the analysis was busy)."}, func() float64 { return float64(s.faces.Dropped.Load()) })
	rate := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "examhall_media_face_frames_per_camera_minute",
		Help: "Key frames analysed per camera over the last minute: the server's face check's achieved rate (at most 60 s / --face-every: 24 at the default 2.5 s)."}, s.faces.FramesPerCameraMinute)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.MustRegister(s.metrics.analysed, s.metrics.skipped, rate)
	}
	return nil
}

// ICEServers are the servers a browser should use, for its RTCPeerConnection.
func (s *Service) ICEServers() []map[string]any {
	out := []map[string]any{}
	for _, u := range s.cfg.ICEServers {
		out = append(out, map[string]any{"urls": u})
	}
	return out
}

// Peer is one device's connection.
type Peer struct {
	s        *Service
	attempt  int64
	device   string
	id       string
	pc       *webrtc.PeerConnection
	audio    bool // the offer has a microphone track
	tracks   int  // tracks the offer sends
	started  time.Time
	mu       sync.Mutex
	rec      *file
	recID    int64
	videoAt  time.Time // last video packet
	frameAt  time.Time // last whole video frame
	stats    struct{ packets, bytes, frames, width, height int }
	lost     bool
	frozen   bool
	closed   bool
	done     chan struct{}
	onSignal func(kind, phase string)
}

// checkOffer parses an offer and counts what it sends, refusing garbage
// and more tracks than the device may send.
func checkOffer(offer, device string) (video, audio int, err error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return 0, 0, ErrBadSDP
	}
	for _, m := range sd.MediaDescriptions {
		send := true
		for _, a := range m.Attributes {
			if a.Key == "recvonly" || a.Key == "inactive" {
				send = false
			}
		}
		if !send {
			continue
		}
		switch m.MediaName.Media {
		case "video":
			video++
			if err := checkLayers(m); err != nil {
				return 0, 0, err
			}
		case "audio":
			audio++
		}
	}
	if video == 0 {
		return 0, 0, fmt.Errorf("%w: it sends no camera", ErrBadSDP)
	}
	if video > 1 || audio > 1 || (device == Phone && audio > 0) {
		return video, audio, ErrTooManyTrack
	}
	return video, audio, nil
}

// checkLayers refuses simulcast layers other than "h" (full, recorded)
// and "l" (small, for grid tiles), and a small layer without a full one.
func checkLayers(m *sdp.MediaDescription) error {
	rids := map[string]bool{}
	for _, a := range m.Attributes {
		if a.Key != "rid" {
			continue
		}
		id, _, _ := strings.Cut(a.Value, " ")
		if id != LayerHigh && id != LayerLow {
			return fmt.Errorf("%w: simulcast layers must be named %q and %q, not %q", ErrBadSDP, LayerHigh, LayerLow, id)
		}
		rids[id] = true
	}
	if len(rids) > 0 && !rids[LayerHigh] {
		return fmt.Errorf("%w: a simulcast camera must send the full layer %q", ErrBadSDP, LayerHigh)
	}
	return nil
}

// Publish answers a device's offer. Candidates the server finds are handed
// to onICE as they come (trickle ICE). A new offer from the same device
// replaces its previous connection (an ICE restart after a reconnect).
func (s *Service) Publish(ctx context.Context, attemptID int64, device, offer string, onICE func(candidate map[string]any)) (string, error) {
	if device != PC && device != Phone {
		return "", ErrBadSDP
	}
	_, audio, err := checkOffer(offer, device)
	if err != nil {
		return "", err
	}
	if err := checkOpen(ctx, s.cfg.DB, attemptID); err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrClosed
	}
	key := fmt.Sprintf("%d/%s", attemptID, device)
	old := s.peers[key]
	s.mu.Unlock()
	if old != nil {
		go old.Close() // closing a dead connection can take a while
	}
	conf := webrtc.Configuration{}
	pc, err := s.api.NewPeerConnection(conf)
	if err != nil {
		return "", err
	}
	p := &Peer{s: s, attempt: attemptID, device: device, id: fmt.Sprintf("%d", time.Now().UnixNano()), pc: pc, audio: audio > 0,
		tracks: 1 + audio, started: time.Now(), done: make(chan struct{})}
	p.onSignal = func(kind, phase string) { s.signal(attemptID, device, kind, phase) }
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil || onICE == nil {
			return
		}
		j := c.ToJSON()
		onICE(map[string]any{"candidate": j.Candidate, "sdpMid": j.SDPMid, "sdpMLineIndex": j.SDPMLineIndex})
	})
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { go p.receive(t) })
	pc.OnConnectionStateChange(p.connectionState)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		pc.Close()
		return "", fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		pc.Close()
		return "", fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	if err := pc.SetLocalDescription(answer); err != nil {
		pc.Close()
		return "", err
	}
	s.mu.Lock()
	s.peers[key] = p
	s.mu.Unlock()
	go p.watch()
	return pc.LocalDescription().SDP, nil
}

// connectionState follows the connection's state: a phone's disconnection
// and return become signals, and a failed or hung-up connection is closed.
func (p *Peer) connectionState(st webrtc.PeerConnectionState) {
	switch st {
	case webrtc.PeerConnectionStateConnected:
		if p.device == Phone {
			p.onSignal("phone_disconnected", "end")
		}
	case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateDisconnected:
		if p.device == Phone {
			p.onSignal("phone_disconnected", "start")
		}
		if st == webrtc.PeerConnectionStateFailed {
			p.Close()
		}
	case webrtc.PeerConnectionStateClosed:
		// The device hung up (DTLS close): its tracks leave the
		// consoles at once instead of lingering as frozen tiles. A
		// close of the server's own (a replaced connection, shutdown)
		// is no disconnection.
		p.mu.Lock()
		ours := p.closed
		p.mu.Unlock()
		if ours {
			return
		}
		if p.device == Phone {
			p.onSignal("phone_disconnected", "start")
		}
		go p.Close()
	}
}

// AddICECandidate adds a browser's trickled candidate to its connection.
func (s *Service) AddICECandidate(attemptID int64, device string, c map[string]any) error {
	s.mu.Lock()
	p := s.peers[fmt.Sprintf("%d/%s", attemptID, device)]
	s.mu.Unlock()
	if p == nil {
		return ErrNoPeer
	}
	init, err := candidateInit(c)
	if err != nil {
		return err
	}
	if err := p.pc.AddICECandidate(init); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}

func candidateInit(c map[string]any) (webrtc.ICECandidateInit, error) {
	b, _ := json.Marshal(c)
	var init webrtc.ICECandidateInit
	if err := json.Unmarshal(b, &init); err != nil || init.Candidate == "" {
		return init, ErrBadCandidate
	}
	return init, nil
}

// Close ends every connection and finishes every recording.
func (s *Service) Close() {
	s.mu.Lock()
	s.closed = true
	peers := make([]*Peer, 0, len(s.peers))
	for _, p := range s.peers {
		peers = append(peers, p)
	}
	viewers := s.viewerList()
	s.mu.Unlock()
	for _, v := range viewers {
		v.Close()
	}
	for _, p := range peers {
		p.Close()
	}
	if s.udp != nil {
		s.udp.Close()
	}
	if s.stop != nil {
		s.stop()
	}
	s.stopUploads()
}

// Close ends the connection and finishes its recording.
func (p *Peer) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	p.pc.Close()
	p.s.removeSources(p)
	p.mu.Lock()
	p.finish(time.Now())
	p.mu.Unlock()
	p.s.mu.Lock()
	key := fmt.Sprintf("%d/%s", p.attempt, p.device)
	current := p.s.peers[key] == p
	if current {
		delete(p.s.peers, key)
	}
	p.s.mu.Unlock()
	if current && p.s.faces != nil {
		p.s.faces.Forget(p.attempt, p.device)
	}
}

// faceSignal publishes the server's face check of a camera for the proctor.
func (s *Service) faceSignal(v vision.Signal) {
	if s.cfg.Bus == nil {
		return
	}
	detail := map[string]any{"device": v.Device, "faces": v.Faces}
	if v.Still != "" {
		// In a cluster the evidence goes to object storage before the
		// flag that cites it can reach a reviewer on another node.
		if err := s.stills.Upload(context.Background(), fmt.Sprintf("%d/%s", v.AttemptID, v.Still)); err != nil {
			s.log.Warn("face still upload", "err", err)
		}
		detail["still"] = v.Still
	}
	sig := store.SignalMessage{AttemptID: v.AttemptID, Source: "face", Kind: v.Kind, Phase: v.Phase, Detail: detail}
	if err := store.PublishSignal(context.Background(), s.cfg.Bus, sig); err != nil {
		s.log.Warn("face signal", "err", err)
	}
}

func (s *Service) signal(attemptID int64, device, kind, phase string) {
	if s.cfg.Bus == nil {
		return
	}
	sig := store.SignalMessage{AttemptID: attemptID, Source: "media", Kind: kind, Phase: phase, Detail: map[string]any{"device": device}}
	if err := store.PublishSignal(context.Background(), s.cfg.Bus, sig); err != nil {
		s.log.Warn("media signal", "err", err)
	}
}

// receive reads one track until it ends: a simulcast camera's small layer
// is only forwarded (forwardLayer); the full layer and the PC's microphone
// are also watched and recorded (record).
func (p *Peer) receive(t *webrtc.TrackRemote) {
	kind := t.Kind().String()
	p.s.metrics.tracks.Inc()
	p.s.tracks.Add(1)
	defer func() { p.s.metrics.tracks.Dec(); p.s.tracks.Add(-1) }()
	video := t.Kind() == webrtc.RTPCodecTypeVideo
	if !video && p.device == Phone {
		return // the rules forbid the phone's microphone; nothing is recorded
	}
	// A simulcast camera sends its small layer on a track of its own: it
	// is only forwarded; the full layer is recorded, watched and analysed.
	layer := t.RID()
	src := p.s.sourceFor(p, kind)
	src.setLayer(layer, uint32(t.SSRC()))
	defer src.setLayer(layer, 0)
	if video && layer == LayerLow {
		p.forwardLayer(t, src, kind, layer)
		return
	}
	p.record(t, src, kind, layer, video)
}

// forwardLayer reads a simulcast camera's small layer, which is only
// counted and forwarded to viewers, never recorded.
func (p *Peer) forwardLayer(t *webrtc.TrackRemote, src *source, kind, layer string) {
	p.askKeyFrame(t)
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		p.s.metrics.packets.WithLabelValues(kind).Inc()
		p.s.metrics.bytes.WithLabelValues(kind).Add(float64(len(pkt.Payload)))
		if src.viewers.Load() > 0 {
			src.forward(layer, pkt)
		}
	}
}

// record reads a track that is recorded (a camera's full layer or the PC's
// microphone): it counts packets and losses, forwards them to viewers,
// notes the video's health and writes whole frames to the recording.
func (p *Peer) record(t *webrtc.TrackRemote, src *source, kind, layer string, video bool) {
	var sb *samplebuilder.SampleBuilder
	clock := uint32(48000)
	track := audioTrack
	if video {
		sb = samplebuilder.New(128, &codecs.VP8Packet{}, 90000, samplebuilder.WithMaxTimeDelay(500*time.Millisecond))
		clock, track = 90000, videoTrack
		p.askKeyFrame(t)
		go p.keyFrames(t)
	}
	var firstTS uint32
	var firstAt time.Time
	var lastSeq uint16
	seen := false
	var snd sound // the microphone's sound, the server's second opinion on talking
	defer func() {
		if snd.on {
			p.s.signal(p.attempt, p.device, "talking", "end")
		}
	}()
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		p.s.metrics.packets.WithLabelValues(kind).Inc()
		p.s.metrics.bytes.WithLabelValues(kind).Add(float64(len(pkt.Payload)))
		if seen && pkt.SequenceNumber-lastSeq > 1 && pkt.SequenceNumber-lastSeq < 1000 {
			p.s.metrics.lost.Add(float64(pkt.SequenceNumber - lastSeq - 1))
		}
		lastSeq = pkt.SequenceNumber
		if src.viewers.Load() > 0 {
			src.forward(layer, pkt)
		}
		if !seen {
			seen, firstTS, firstAt = true, pkt.Timestamp, now
		}
		if video {
			p.mu.Lock()
			p.videoAt = now
			p.stats.packets++
			p.stats.bytes += len(pkt.Payload)
			p.mu.Unlock()
			sb.Push(pkt)
			for s := sb.Pop(); s != nil; s = sb.Pop() {
				if s.PrevDroppedPackets > 0 {
					// Loss NACK could not repair: the picture is broken
					// until the next key frame, so ask for one now.
					p.keyFrameNow(uint32(t.SSRC()))
				}
				key := p.noteFrame(s.Data)
				p.write(track, key, firstAt, s.PacketTimestamp-firstTS, clock, s.Data)
			}
		} else {
			p.write(track, true, firstAt, pkt.Timestamp-firstTS, clock, pkt.Payload)
			if phase := snd.add(now, len(pkt.Payload)); phase != "" {
				p.s.signal(p.attempt, p.device, "talking", phase)
			}
		}
	}
}

// noteFrame notes a whole video frame for the health figures (its size from
// a key frame's header) and offers key frames to the face check. It says
// whether the frame is a key frame.
func (p *Peer) noteFrame(data []byte) (key bool) {
	key = len(data) > 0 && data[0]&0x1 == 0
	p.mu.Lock()
	p.frameAt = time.Now()
	p.stats.frames++
	if key && len(data) >= 10 && data[3] == 0x9d && data[4] == 0x01 && data[5] == 0x2a {
		p.stats.width = int(uint16(data[6])|uint16(data[7])<<8) & 0x3fff
		p.stats.height = int(uint16(data[8])|uint16(data[9])<<8) & 0x3fff
	}
	p.mu.Unlock()
	if key && p.s.faces != nil {
		p.s.faces.Offer(p.attempt, p.device, data) // never waits
	}
	return key
}

// write puts one frame in the recording, opening (or rolling) the file at a
// key frame so every file starts decodable.
func (p *Peer) write(track int, key bool, trackStart time.Time, ticks, clock uint32, data []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(data) == 0 {
		return
	}
	at := trackStart.Add(time.Duration(uint64(ticks) * uint64(time.Second) / uint64(clock)))
	if p.rec == nil || (track == videoTrack && key && at.Sub(p.rec.started) >= p.s.cfg.RollEvery) {
		if track != videoTrack || !key {
			return // wait for a key frame
		}
		if p.rec != nil {
			p.finish(at)
		}
		if err := p.open(at); err != nil {
			p.s.log.Error("open recording", "attempt", p.attempt, "device", p.device, "err", err)
			return
		}
	}
	ts := at.Sub(p.rec.started).Milliseconds()
	if err := p.rec.write(track, key, ts, data); err != nil {
		p.s.log.Error("write recording", "attempt", p.attempt, "err", err)
		return
	}
	p.s.metrics.written.Add(float64(len(data)))
}

func (p *Peer) open(at time.Time) error {
	name := fmt.Sprintf("%s-%s-%s.webm", p.device, at.UTC().Format("20060102T150405.000Z"), p.id)
	path := filepath.Join(p.s.cfg.DataDir, "recordings", fmt.Sprint(p.attempt), name)
	f, err := createFile(path, at, p.audio && p.device == PC)
	if err != nil {
		return err
	}
	codecs := "vp8"
	if p.audio && p.device == PC {
		codecs = "vp8,opus"
	}
	if p.s.cfg.DB != nil {
		row := &store.Recording{AttemptID: p.attempt, Device: p.device, Connection: p.id, Path: path, Codecs: codecs, StartedAt: at.UTC(), State: "open", Node: p.s.cfg.NodeID}
		if err := p.s.cfg.DB.Create(row).Error; err != nil {
			f.close()
			return err
		}
		p.recID = row.ID
	}
	p.rec = f
	p.s.metrics.files.Inc()
	return nil
}

// finish closes the current file with its seek index and updates its row.
func (p *Peer) finish(at time.Time) {
	if p.rec == nil {
		return
	}
	size, err := p.rec.close()
	if err != nil {
		p.s.log.Error("close recording", "path", p.rec.path, "err", err)
	}
	if p.s.cfg.DB != nil && p.recID != 0 {
		p.s.cfg.DB.Model(&store.Recording{}).Where("id = ?", p.recID).Updates(map[string]any{"ended_at": at.UTC(), "size_bytes": size, "state": "closed"})
		p.s.kickUploads()
	}
	p.rec, p.recID = nil, 0
}

// askKeyFrame sends a picture loss indication, so the browser sends a key frame.
func (p *Peer) askKeyFrame(t *webrtc.TrackRemote) { p.keyFrameNow(uint32(t.SSRC())) }

func (p *Peer) keyFrameNow(ssrc uint32) {
	if ssrc == 0 {
		return // a layer not (or no longer) sent
	}
	if err := p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err == nil {
		p.s.metrics.plis.Inc()
	}
}

// keyFrames asks for a key frame at a fixed interval, so seeking and frame
// analysis always have one within a few seconds.
func (p *Peer) keyFrames(t *webrtc.TrackRemote) {
	tick := time.NewTicker(p.s.cfg.KeyFrameEvery)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
			p.askKeyFrame(t)
		}
	}
}

// watch reports a video that stopped (no packets for LostAfter) and its
// return, as signals for the proctor.
func (p *Peer) watch() {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	statsAt := time.Now()
	for {
		select {
		case <-p.done:
			p.mu.Lock()
			lost := p.lost
			p.mu.Unlock()
			if lost {
				p.onSignal("video_lost", "end")
			}
			return
		case now := <-tick.C:
			if now.Sub(statsAt) >= healthEvery {
				p.publishHealth(now.Sub(statsAt))
				statsAt = now
			}
			p.mu.Lock()
			last, lost := p.videoAt, p.lost
			gone := !last.IsZero() && now.Sub(last) > p.s.cfg.LostAfter
			switch {
			case gone && !lost:
				p.lost = true
				p.s.metrics.detection.Observe(now.Sub(last).Seconds())
			case !gone && lost:
				p.lost = false
			}
			changed := p.lost != lost
			// Packets that no longer make whole frames: a frozen picture.
			wasFrozen := p.frozen
			p.frozen = !gone && !last.IsZero() && !p.frameAt.IsZero() && now.Sub(p.frameAt) > 2*p.s.cfg.LostAfter
			frozeChanged := p.frozen != wasFrozen
			p.mu.Unlock()
			if changed {
				phase := "end"
				if !lost {
					phase = "start"
				}
				p.onSignal("video_lost", phase)
			}
			if frozeChanged {
				phase := "end"
				if !wasFrozen {
					phase = "start"
				}
				p.onSignal("video_frozen", phase)
			}
			// A device that sent no video for GoneAfter is released even
			// if its connection still answers (a page frozen in the
			// background): its recording closes, so review lists it, and
			// the page publishes again on a new connection when it wakes.
			if since := cmp.Or(last, p.started); now.Sub(since) > p.s.cfg.GoneAfter {
				p.s.log.Info("media: device sent no video; released", "attempt", p.attempt, "device", p.device, "silent", now.Sub(since).Round(time.Second))
				go p.Close()
			}
		}
	}
}

// RepairAll finishes recordings left open by a crash: each is rewritten
// with a seek index and its row closed. It runs at start-up.
func (s *Service) RepairAll(ctx context.Context) (int, error) {
	if s.cfg.DB == nil {
		return 0, nil
	}
	// Only this node's: another node's open recording is being written.
	var open []store.Recording
	if err := s.cfg.DB.WithContext(ctx).Where("state = ? AND (node = ? OR node = '')", "open", s.cfg.NodeID).Find(&open).Error; err != nil {
		return 0, err
	}
	n := 0
	for _, r := range open {
		d, err := Repair(r.Path)
		state := "repaired"
		if err != nil {
			if errors.Is(err, ErrBadSDP) || strings.Contains(err.Error(), "no such file") {
				state = "missing"
			} else {
				s.log.Warn("repair recording", "path", r.Path, "err", err)
				state = "damaged"
			}
		}
		end := r.StartedAt.Add(d)
		var size int64
		if fi, err := osStat(r.Path); err == nil {
			size = fi
		}
		s.cfg.DB.WithContext(ctx).Model(&store.Recording{}).Where("id = ?", r.ID).Updates(map[string]any{"state": state, "ended_at": end, "size_bytes": size})
		n++
	}
	return n, nil
}

// HealthTopic carries each camera's figures every few seconds.
const HealthTopic = "media.health"

const healthEvery = 5 * time.Second

// Health is one camera's figures over the last interval.
type Health struct {
	AttemptID     int64     `json:"attempt_id"`
	Device        string    `json:"device"`
	PacketsPerSec float64   `json:"packets_per_s"`
	Kbps          float64   `json:"kbps"`
	FPS           float64   `json:"fps"`
	Width         int       `json:"width"`
	Height        int       `json:"height"`
	LastPacket    time.Time `json:"last_packet"`
}

// publishHealth sends the camera's figures for the interval and starts anew.
func (p *Peer) publishHealth(d time.Duration) {
	p.mu.Lock()
	st := p.stats
	h := Health{AttemptID: p.attempt, Device: p.device, PacketsPerSec: float64(st.packets) / d.Seconds(),
		Kbps: float64(st.bytes*8) / d.Seconds() / 1000, FPS: float64(st.frames) / d.Seconds(), Width: st.width, Height: st.height, LastPacket: p.videoAt}
	p.stats.packets, p.stats.bytes, p.stats.frames = 0, 0, 0
	p.mu.Unlock()
	if p.s.cfg.Bus == nil {
		return
	}
	b, _ := json.Marshal(h)
	p.s.cfg.Bus.Publish(context.Background(), HealthTopic, b)
}
