package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	pmedia "github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// MediaLoadResult is what `examhall loadgen media` prints.
type MediaLoadResult struct {
	Candidates            int     `json:"candidates"`
	Tracks                int     `json:"tracks"`
	PacketsSent           int64   `json:"packets_sent"`
	ServerPacketsReceived int64   `json:"server_packets_received"`
	LossRatio             float64 `json:"loss_ratio"`
	ServerCPUSeconds      float64 `json:"server_cpu_seconds"`
	CPUSecondsPerCandMin  float64 `json:"server_cpu_seconds_per_candidate_minute"`
	Recordings            int64   `json:"recordings"`
	DropDetectP50ms       float64 `json:"drop_detect_p50_ms"`
	DropDetectP99ms       float64 `json:"drop_detect_p99_ms"`
	// UDPRcvbufErrors and UDPInErrors are this machine's kernel counts
	// (/proc/net/snmp) over the run: datagrams dropped because a socket's
	// receive buffer was full, and all UDP receive errors; on loopback they
	// count the server's and the generator's sockets alike.
	UDPRcvbufErrors int64 `json:"udp_rcvbuf_errors"`
	UDPInErrors     int64 `json:"udp_in_errors"`
	// FaceFramesPerCameraMinute is how often the server's face check
	// looked at each camera over the run (0 with --face-check=false);
	// FaceFramesDropped the key frames a newer one replaced before their
	// turn.
	FaceFramesPerCameraMinute float64  `json:"face_frames_per_camera_minute"`
	FaceFramesDropped         int64    `json:"face_frames_dropped"`
	Errors                    int64    `json:"errors"`
	ErrorSamples              []string `json:"error_samples,omitempty"`
}

func loadgenMedia(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("examhall loadgen media", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demoPath := fs.String("demo", "data/demo.json", "the demo.json written by examhall demo")
	n := fs.Int("candidates", 10, "how many candidates publish their two cameras")
	dur := fs.Duration("duration", 30*time.Second, "how long they publish")
	video := fs.String("video", "media/testdata/camera.ivf", "VP8 IVF file each camera sends (looped)")
	audio := fs.String("audio", "media/testdata/mic.ogg", "Opus Ogg file each PC microphone sends (looped)")
	entry := fs.String("url", "", "the server or cluster entry to drive (default: the demo's URL); sockets follow redirects to their room's node")
	if err := fs.Parse(args); err != nil {
		return err
	}
	demo, err := loadDemo(*demoPath)
	if err != nil {
		return err
	}
	if err := demo.useEntry(*entry); err != nil {
		return err
	}
	if *n > len(demo.Candidates) {
		return fmt.Errorf("the demo has %d candidates", len(demo.Candidates))
	}
	frames, err := readIVF(*video)
	if err != nil {
		return err
	}
	pages, err := readOgg(*audio)
	if err != nil {
		return err
	}
	res, err := runMediaLoad(ctx, demo, *n, *dur, frames, pages)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

// serverMetrics reads counters from the server's /metrics.
func serverMetrics(base string) (map[string]float64, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err == nil {
			out[l[:i]] += v
			if j := strings.IndexByte(l[:i], '{'); j > 0 {
				out[l[:j]] += v // the sum over labels too
			}
		}
	}
	return out, sc.Err()
}

func readIVF(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		fr, _, err := r.ParseNextFrame()
		if err != nil {
			break
		}
		out = append(out, fr)
	}
	if len(out) == 0 {
		return nil, errors.New("no frames in " + path)
	}
	return out, nil
}

func readOgg(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		p, _, err := r.ParseNextPage()
		if err != nil {
			break
		}
		if bytes.HasPrefix(p, []byte("OpusTags")) {
			continue // a header, not a packet to send (NewWith read OpusHead)
		}
		out = append(out, p)
	}
	return out, nil
}

// mediaDevice is one simulated camera: a pion connection that publishes
// over the exam socket (the PC) or the phone socket.
type mediaDevice struct {
	pc    *webrtc.PeerConnection
	ws    *websocket.Conn
	video *webrtc.TrackLocalStaticSample
	audio *webrtc.TrackLocalStaticSample
	pause atomic.Bool
	gone  chan struct{} // closed when its socket ends (a node lost, a room moved)
}

func newPionAPI() *webrtc.API {
	m := &webrtc.MediaEngine{}
	m.RegisterDefaultCodecs()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	reg := &interceptor.Registry{}
	webrtc.RegisterDefaultInterceptors(m, reg) // NACK, reports and the statistics read at the end
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(reg))
}

// publish opens a device's connection over its socket and waits until it is up.
func publishOver(ctx context.Context, api *webrtc.API, ws *websocket.Conn, withAudio bool) (*mediaDevice, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	d := &mediaDevice{pc: pc, ws: ws, gone: make(chan struct{})}
	d.video, _ = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	pc.AddTrack(d.video)
	if withAudio {
		d.audio, _ = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "cam")
		pc.AddTrack(d.audio)
	}
	offer, _ := pc.CreateOffer(nil)
	gathered := webrtc.GatheringCompletePromise(pc)
	pc.SetLocalDescription(offer)
	<-gathered
	var wmu sync.Mutex
	write := func(v any) error { wmu.Lock(); defer wmu.Unlock(); return ws.WriteJSON(v) }
	if err := write(map[string]any{"type": "media_offer", "id": "mo", "sdp": pc.LocalDescription().SDP}); err != nil {
		return nil, err
	}
	answered := make(chan error, 1)
	go func() {
		defer close(d.gone)
		var early []webrtc.ICECandidateInit
		got := false
		for {
			var m struct {
				Type      string                  `json:"type"`
				SDP       string                  `json:"sdp"`
				Code      string                  `json:"code"`
				Candidate webrtc.ICECandidateInit `json:"candidate"`
			}
			if err := ws.ReadJSON(&m); err != nil {
				return
			}
			switch m.Type {
			case "media_answer":
				err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP})
				got = true
				for _, c := range early {
					pc.AddICECandidate(c)
				}
				answered <- err
			case "media_ice":
				if got {
					pc.AddICECandidate(m.Candidate)
				} else {
					early = append(early, m.Candidate)
				}
			case "error":
				if !got {
					answered <- fmt.Errorf("server: %s", m.Code)
				}
			}
		}
	}()
	select {
	case err := <-answered:
		if err != nil {
			return nil, err
		}
	case <-time.After(15 * time.Second):
		return nil, errors.New("no media answer")
	}
	deadline := time.Now().Add(15 * time.Second)
	for pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("media not connected: %s", pc.ConnectionState())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d, nil
}

// send plays the fixtures until end: 15 frames a second, 20 ms audio pages.
func (d *mediaDevice) send(end time.Time, frames, pages [][]byte, sent *atomic.Int64) {
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Second / 15)
		defer tick.Stop()
		for i := 0; time.Now().Before(end); i++ {
			<-tick.C
			if d.pause.Load() {
				continue
			}
			f := frames[i%len(frames)]
			d.video.WriteSample(pmedia.Sample{Data: f, Duration: time.Second / 15})
			// pion packetizes VP8 into RTP payloads of at most 1,187 bytes
			// (a 1,200-byte MTU less the RTP header and the VP8 descriptor).
			sent.Add(int64((len(f) + 1186) / 1187))
		}
	})
	if d.audio != nil && len(pages) > 0 {
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; time.Now().Before(end); i++ {
				<-tick.C
				d.audio.WriteSample(pmedia.Sample{Data: pages[i%len(pages)], Duration: 20 * time.Millisecond})
				sent.Add(1)
			}
		})
	}
	wg.Wait()
}

func runMediaLoad(ctx context.Context, demo *DemoFile, n int, dur time.Duration, frames, pages [][]byte) (*MediaLoadResult, error) {
	st := &stats{}
	api := newPionAPI()
	var mu sync.Mutex
	var devices []*mediaDevice
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, l := range demo.Candidates[:n] {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c := &simCandidate{base: demo.URL, login: l, st: st, acked: map[int64]ackedAnswer{}, unacked: map[int64]simAnswer{}}
			if err := c.doLogin(ctx); err != nil {
				st.err(err)
				return
			}
			if err := c.findAttempt(ctx); err != nil {
				st.err(err)
				return
			}
			u := "ws" + strings.TrimPrefix(demo.URL, "http") + fmt.Sprintf("/ws/exam?attempt=%d", c.attempt)
			examWS, err := dialRoom(ctx, &websocket.Dialer{Jar: c.http.Jar}, u)
			if err != nil {
				st.err(err)
				return
			}
			// Pair the phone the way the page does, before the socket carries media.
			examWS.WriteJSON(map[string]any{"type": "pair", "id": "p"})
			var link string
			for link == "" {
				var m map[string]any
				if err := examWS.ReadJSON(&m); err != nil {
					st.err(err)
					return
				}
				if m["type"] == "pair" {
					link, _ = m["url"].(string)
				}
			}
			pcDev, err := publishOver(ctx, api, examWS, true)
			if err != nil {
				st.err(fmt.Errorf("pc %s: %w", l.Ticket, err))
				return
			}
			phoneURL := "ws" + strings.TrimPrefix(strings.Replace(link, "/phone?", "/ws/phone?", 1), "http")
			phoneWS, err := dialRoom(ctx, websocket.DefaultDialer, phoneURL)
			if err != nil {
				st.err(err)
				return
			}
			phoneDev, err := publishOver(ctx, api, phoneWS, false)
			if err != nil {
				st.err(fmt.Errorf("phone %s: %w", l.Ticket, err))
				return
			}
			mu.Lock()
			devices = append(devices, pcDev, phoneDev)
			mu.Unlock()
		})
	}
	wg.Wait()
	before, err := serverMetrics(demo.URL)
	if err != nil {
		return nil, err
	}
	udpBefore := udpCounters()
	var sent atomic.Int64
	end := time.Now().Add(dur)
	// A tenth of the phones stop sending for 4 s in the middle, to measure
	// how fast a dropped camera is noticed.
	for i, d := range devices {
		if d.audio == nil && i%20 == 1 {
			go func() {
				time.Sleep(dur / 3)
				d.pause.Store(true)
				time.Sleep(4 * time.Second)
				d.pause.Store(false)
			}()
		}
	}
	var swg sync.WaitGroup
	for _, d := range devices {
		swg.Go(func() { d.send(end, frames, pages, &sent) })
	}
	swg.Wait()
	time.Sleep(time.Second)
	after, err := serverMetrics(demo.URL)
	if err != nil {
		return nil, err
	}
	tracks := 0
	var packetsSent int64
	for _, d := range devices {
		tracks++
		if d.audio != nil {
			tracks++
		}
		d.pc.Close()
		d.ws.Close()
	}
	packetsSent = sent.Load()
	res := &MediaLoadResult{Candidates: len(devices) / 2, Tracks: tracks, PacketsSent: packetsSent, Errors: st.errors.Load(), ErrorSamples: st.samples}
	udpAfter := udpCounters()
	res.UDPRcvbufErrors = udpAfter["RcvbufErrors"] - udpBefore["RcvbufErrors"]
	res.UDPInErrors = udpAfter["InErrors"] - udpBefore["InErrors"]
	res.ServerPacketsReceived = int64(after["examhall_media_rtp_packets_total"] - before["examhall_media_rtp_packets_total"])
	// Loss is what the server saw missing in each track's sequence numbers.
	lost := after["examhall_media_packets_lost_total"] - before["examhall_media_packets_lost_total"]
	if res.ServerPacketsReceived > 0 {
		res.LossRatio = lost / (float64(res.ServerPacketsReceived) + lost)
	}
	res.ServerCPUSeconds = after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]
	if res.Candidates > 0 {
		res.CPUSecondsPerCandMin = res.ServerCPUSeconds / float64(res.Candidates) / dur.Minutes()
	}
	res.Recordings = int64(after["examhall_media_recordings_opened_total"])
	if res.Candidates > 0 {
		analysed := after["examhall_media_face_frames_analysed_total"] - before["examhall_media_face_frames_analysed_total"]
		res.FaceFramesPerCameraMinute = analysed / float64(2*res.Candidates) / dur.Minutes()
		res.FaceFramesDropped = int64(after["examhall_media_face_frames_dropped_total"] - before["examhall_media_face_frames_dropped_total"])
	}
	dc := after["examhall_media_drop_detection_seconds_count"] - before["examhall_media_drop_detection_seconds_count"]
	ds := after["examhall_media_drop_detection_seconds_sum"] - before["examhall_media_drop_detection_seconds_sum"]
	if dc > 0 {
		res.DropDetectP50ms = ds / dc * 1000 // the mean; the histogram's buckets are 0.5 s wide
		res.DropDetectP99ms = bucketP99(after, before, "examhall_media_drop_detection_seconds_bucket")
	}
	return res, nil
}

// udpCounters reads the kernel's UDP counters from /proc/net/snmp (its
// "Udp:" header line names the values of the next); empty where there is
// no such file.
func udpCounters() map[string]int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	out := map[string]int64{}
	if err != nil {
		return out
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		for i, v := range f[1:] {
			if i < len(names) {
				out[names[i]], _ = strconv.ParseInt(v, 10, 64)
			}
		}
		break
	}
	return out
}

// bucketP99 reads an approximate 99th percentile from histogram buckets.
func bucketP99(after, before map[string]float64, name string) float64 {
	type b struct{ le, n float64 }
	var bs []b
	var total float64
	for k, v := range after {
		if !strings.HasPrefix(k, name+"{le=\"") {
			continue
		}
		le := strings.TrimSuffix(strings.TrimPrefix(k, name+"{le=\""), "\"}")
		f, err := strconv.ParseFloat(le, 64)
		if err != nil {
			continue // +Inf
		}
		n := v - before[k]
		bs = append(bs, b{f, n})
		total = max(total, n)
	}
	best := 0.0
	for _, x := range bs {
		if x.n >= 0.99*total && (best == 0 || x.le < best) {
			best = x.le
		}
	}
	return best * 1000
}
