// Package mediatest has a candidate's device made with pion, for tests of
// the media service and of the whole system: it sends the VP8 fixture (in
// two simulcast layers, as the pages do, when asked) and the Opus one over
// real WebRTC on loopback.
package mediatest

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/examhall/examhall/media"
)

// Testdata is the media package's fixture folder.
func Testdata(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata", name)
}

// Publisher is a candidate's device.
type Publisher struct {
	t      testing.TB
	PC     *webrtc.PeerConnection
	video  *webrtc.TrackLocalStaticSample
	small  *webrtc.TrackLocalStaticSample // the small layer, when simulcast
	audio  *webrtc.TrackLocalStaticSample
	sender *webrtc.RTPSender
	// Paused stops the video (frames are skipped) while set.
	Paused atomic.Bool
	// Frames counts full-layer frames sent.
	Frames atomic.Int64
	// IVF is the video played (default the media package's camera.ivf,
	// or camera-h.ivf and camera-l.ivf when simulcast).
	IVF  string
	stop chan struct{}
	once sync.Once
	udp  net.PacketConn // every packet of the device goes through it
}

// Vanish ends the device as a killed process does: nothing more is sent,
// not even the DTLS close a hang-up sends.
func (p *Publisher) Vanish() {
	p.once.Do(func() { close(p.stop) })
	p.udp.Close()
}

// Close hangs up, as a candidate's device that goes away, and stops Send.
func (p *Publisher) Close() {
	p.once.Do(func() { close(p.stop) })
	p.PC.Close()
	p.udp.Close()
}

// stopped says whether Close was called.
func (p *Publisher) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// New makes a device: a camera (in layers "h" and "l" when simulcast) and,
// with audio, a microphone.
func New(t testing.TB, audio, simulcast bool) *Publisher {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	p := &Publisher{t: t, stop: make(chan struct{})}
	reg := &interceptor.Registry{}
	if simulcast {
		for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI} {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
				t.Fatal(err)
			}
		}
		reg.Add(&ridFactory{p: p})
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.udp = udp
	se.SetICEUDPMux(webrtc.NewICEUDPMux(nil, udp))
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p.PC = pc
	t.Cleanup(p.Close)
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}
	if simulcast {
		p.video, _ = webrtc.NewTrackLocalStaticSample(vp8, "video", "cam", webrtc.WithRTPStreamID(media.LayerHigh))
		p.small, _ = webrtc.NewTrackLocalStaticSample(vp8, "video", "cam", webrtc.WithRTPStreamID(media.LayerLow))
	} else {
		p.video, _ = webrtc.NewTrackLocalStaticSample(vp8, "video", "cam")
	}
	if p.sender, err = pc.AddTrack(p.video); err != nil {
		t.Fatal(err)
	}
	if simulcast {
		if err := p.sender.AddEncoding(p.small); err != nil {
			t.Fatal(err)
		}
	}
	if audio {
		p.audio, _ = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "cam")
		if _, err := pc.AddTrack(p.audio); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// Connect offers to the service and completes ICE.
func (p *Publisher) Connect(svc *media.Service, attempt int64, device string) {
	p.t.Helper()
	offer, err := p.PC.CreateOffer(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(p.PC)
	p.PC.SetLocalDescription(offer)
	<-gathered
	var mu sync.Mutex
	var early []webrtc.ICECandidateInit
	answered := false
	answer, err := svc.Publish(context.Background(), attempt, device, p.PC.LocalDescription().SDP, func(c map[string]any) {
		b, _ := json.Marshal(c)
		var init webrtc.ICECandidateInit
		json.Unmarshal(b, &init)
		mu.Lock()
		defer mu.Unlock()
		if !answered {
			early = append(early, init)
			return
		}
		p.PC.AddICECandidate(init)
	})
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		p.t.Fatal(err)
	}
	mu.Lock()
	answered = true
	for _, c := range early {
		p.PC.AddICECandidate(c)
	}
	mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for p.PC.ConnectionState() != webrtc.PeerConnectionStateConnected {
		if time.Now().After(deadline) {
			p.t.Fatalf("not connected: %s", p.PC.ConnectionState())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Send plays the fixtures in real time for d (looping the video), skipping
// frames while paused.
func (p *Publisher) Send(d time.Duration) {
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	name := p.IVF
	switch {
	case name != "":
	case p.small != nil:
		// Its layers, with a key frame every half second as a browser
		// gives one at once when asked (a file cannot).
		name = Testdata("camera-h.ivf")
	default:
		name = Testdata("camera.ivf")
	}
	wg.Go(func() { p.play(p.video, name, end) })
	if p.small != nil {
		wg.Go(func() { p.play(p.small, Testdata("camera-l.ivf"), end) })
	}
	if p.audio != nil {
		wg.Go(func() { p.playAudio(end) })
	}
	wg.Wait()
}

// play sends an IVF file's frames on a track in real time until end,
// looping, skipping frames while paused.
func (p *Publisher) play(track *webrtc.TrackLocalStaticSample, name string, end time.Time) {
	for time.Now().Before(end) && !p.stopped() {
		f, err := os.Open(name)
		if err != nil {
			p.t.Error(err)
			return
		}
		r, hdr, err := ivfreader.NewWith(f)
		if err != nil {
			p.t.Error(err)
			return
		}
		every := time.Second * time.Duration(hdr.TimebaseNumerator) / time.Duration(hdr.TimebaseDenominator)
		tick := time.NewTicker(every)
		for time.Now().Before(end) && !p.stopped() {
			frame, _, err := r.ParseNextFrame()
			if err != nil {
				break
			}
			<-tick.C
			if !p.Paused.Load() {
				track.WriteSample(pmedia.Sample{Data: frame, Duration: every})
				if track == p.video {
					p.Frames.Add(1)
				}
			}
		}
		tick.Stop()
		f.Close()
	}
}

func (p *Publisher) playAudio(end time.Time) {
	for time.Now().Before(end) && !p.stopped() {
		f, err := os.Open(Testdata("mic.ogg"))
		if err != nil {
			p.t.Error(err)
			return
		}
		r, _, err := oggreader.NewWith(f)
		if err != nil {
			p.t.Error(err)
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		var last uint64
		for time.Now().Before(end) && !p.stopped() {
			page, h, err := r.ParseNextPage()
			if err != nil {
				break
			}
			n := h.GranulePosition - last
			last = h.GranulePosition
			if bytes.HasPrefix(page, []byte("OpusTags")) {
				continue // a header, not a packet (NewWith read OpusHead)
			}
			<-tick.C
			p.audio.WriteSample(pmedia.Sample{Data: page, Duration: time.Duration(n) * time.Second / 48000})
		}
		tick.Stop()
		f.Close()
	}
}

// ridFactory makes the interceptor that marks each simulcast packet with
// its media section and layer (pion's sender does not), as a browser does.
type ridFactory struct{ p *Publisher }

func (f *ridFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &ridWriter{p: f.p}, nil
}

type ridWriter struct {
	interceptor.NoOp
	p *Publisher
}

func (r *ridWriter) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var midID, ridID uint8
	for _, e := range info.RTPHeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		}
	}
	if midID == 0 || ridID == 0 {
		return w
	}
	// Which layer this stream is, looked up at its first packet: pion
	// binds streams while it holds locks that the lookup needs.
	var once sync.Once
	var mid, rid string
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		once.Do(func() {
			for _, tr := range r.p.PC.GetTransceivers() {
				if tr.Sender() == r.p.sender {
					mid = tr.Mid()
				}
			}
			for _, e := range r.p.sender.GetParameters().Encodings {
				if uint32(e.SSRC) == info.SSRC {
					rid = e.RID
				}
			}
		})
		if rid != "" {
			h.SetExtension(midID, []byte(mid))
			h.SetExtension(ridID, []byte(rid))
		}
		return w.Write(h, payload, a)
	})
}
