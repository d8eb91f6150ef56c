package media_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/media/mediatest"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

func newPublisher(t *testing.T, audio bool) *mediatest.Publisher {
	return mediatest.New(t, audio, false)
}

// newSimulcastPublisher sends the camera in two layers, as the pages do:
// "h" the fixture, "l" its 160x120 copy.
func newSimulcastPublisher(t *testing.T, audio bool) *mediatest.Publisher {
	return mediatest.New(t, audio, true)
}

// attemptRow makes the rows a recording's index needs.
func attemptRow(t *testing.T, db *store.DB) int64 {
	p := &store.Programme{Code: "p", NameZh: "项目", NameEn: "P", Rules: "{}"}
	db.Create(p)
	ex := &store.Exam{ProgrammeID: p.ID, Code: "e", Kind: "formal", TitleZh: "理论", TitleEn: "Theory", DurationMinutes: 120, PassMark: 80, Blueprint: "{}", Policy: "{}", ProctorRules: "{}"}
	db.Create(ex)
	u := &store.User{Role: store.RoleCandidate, Username: "c", PasswordHash: "x", DisplayName: "考生"}
	db.Create(u)
	a := &store.Attempt{ExamID: ex.ID, CandidateID: u.ID, Kind: "formal", Status: "in_progress", Paper: "{}"}
	if err := db.Create(a).Error; err != nil {
		t.Fatal(err)
	}
	return a.ID
}

func ffprobe(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe is not installed (apt-get install ffmpeg; .ci/run does it)")
	}
	out, err := exec.Command("ffprobe", append([]string{"-v", "error"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// lastPacketTime is the time of the last video packet: a file cut by a
// crash has no Duration to read.
func lastPacketTime(t *testing.T, path string) float64 {
	out := ffprobe(t, "-select_streams", "v:0", "-show_entries", "packet=pts_time", "-of", "csv=p=0", path)
	lines := strings.Fields(out)
	v, _ := strconv.ParseFloat(lines[len(lines)-1], 64)
	return v
}

func newService(t *testing.T, db *store.DB, bus store.Bus) (*media.Service, string) {
	dir := t.TempDir()
	svc, err := media.New(media.Config{DB: db, Bus: bus, DataDir: dir, LoopbackOnly: true, LostAfter: time.Second, KeyFrameEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return svc, dir
}

func TestRecordingIsPlayableAndIndexed(t *testing.T) {
	db := storetestDB(t)
	attempt := attemptRow(t, db)
	svc, dir := newService(t, db, store.NewMemBus())
	pub := newPublisher(t, true)
	pub.Connect(svc, attempt, media.PC)
	sent := 4 * time.Second
	pub.Send(sent)
	time.Sleep(300 * time.Millisecond)
	svc.Close()

	var recs []store.Recording
	db.Where("attempt_id = ?", attempt).Find(&recs)
	if len(recs) != 1 || recs[0].State != "closed" || recs[0].Codecs != "vp8,opus" || recs[0].SizeBytes == 0 || recs[0].EndedAt == nil {
		t.Fatalf("index %+v", recs)
	}
	path := recs[0].Path
	if !strings.HasPrefix(path, filepath.Join(dir, "recordings")) {
		t.Fatalf("recording outside the data dir: %s", path)
	}
	dur, _ := strconv.ParseFloat(ffprobe(t, "-show_entries", "format=duration", "-of", "csv=p=0", path), 64)
	if want := sent.Seconds(); dur < want*0.9 || dur > want*1.05 {
		t.Errorf("duration %.2f s for %.1f s sent", dur, want)
	}
	frames, _ := strconv.Atoi(ffprobe(t, "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path))
	if sentFrames := int(pub.Frames.Load()); frames < sentFrames*9/10 {
		t.Errorf("%d frames recorded of %d sent", frames, sentFrames)
	}
	if streams := ffprobe(t, "-show_entries", "stream=codec_name", "-of", "csv=p=0", path); streams != "vp8\nopus" {
		t.Errorf("streams %q", streams)
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-xerror", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil {
		t.Errorf("does not decode cleanly: %v %s", err, out)
	}
}

func TestCutRecordingIsRepaired(t *testing.T) {
	dir := t.TempDir()
	svc, err := media.New(media.Config{DataDir: dir, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	pub := newPublisher(t, true)
	pub.Connect(svc, 1, media.PC)
	pub.Send(3 * time.Second)
	// Copy the file as it is while still being written: what a crash leaves.
	var path string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if strings.HasSuffix(p, ".webm") {
			path = p
		}
		return nil
	})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	svc.Close()
	cut := filepath.Join(dir, "cut.webm")
	os.WriteFile(cut, b[:len(b)*9/10], 0o600) // and a torn last write
	d, err := media.Repair(cut)
	if err != nil {
		t.Fatal(err)
	}
	dur, _ := strconv.ParseFloat(ffprobe(t, "-show_entries", "format=duration", "-of", "csv=p=0", cut), 64)
	if d < 1500*time.Millisecond || dur < 1.5 || dur > 3.2 {
		t.Fatalf("repaired to %v (ffprobe %.2f s)", d, dur)
	}
	if last := lastPacketTime(t, cut); last < dur-0.5 {
		t.Fatalf("last packet at %.2f s of %.2f", last, dur)
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-xerror", "-i", cut, "-f", "null", "-").CombinedOutput(); err != nil {
		t.Fatalf("repaired file does not decode: %v %s", err, out)
	}
	if _, err := media.Repair(filepath.Join(dir, "nothing.webm")); err == nil {
		t.Fatal("repairing a missing file succeeded")
	}
}

func TestDroppedVideoIsSignalledWithinThreeSeconds(t *testing.T) {
	bus := store.NewMemBus()
	sub, _ := bus.Subscribe(context.Background(), store.SignalTopic)
	defer sub.Close()
	svc, _ := newService(t, nil, bus)
	pub := newPublisher(t, false)
	pub.Connect(svc, 7, media.Phone)
	done := make(chan struct{})
	go func() { pub.Send(9 * time.Second); close(done) }()
	time.Sleep(2 * time.Second)
	pub.Paused.Store(true)
	stopped := time.Now()
	next := func(kind, phase string) time.Duration {
		for {
			select {
			case m := <-sub.C:
				var s struct{ Kind, Phase, Source string }
				json.Unmarshal(m.Data, &s)
				if s.Kind == kind && s.Phase == phase && s.Source == "media" {
					return time.Since(stopped)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("no %s %s", kind, phase)
			}
		}
	}
	if d := next("video_lost", "start"); d > 3*time.Second {
		t.Fatalf("video_lost after %v, want within 3 s", d)
	}
	time.Sleep(500 * time.Millisecond)
	pub.Paused.Store(false)
	next("video_lost", "end")
	<-done
}

func TestBadOffersAreRefused(t *testing.T) {
	svc, _ := newService(t, nil, store.NewMemBus())
	for _, tc := range []struct {
		name, device, offer string
		want                error
	}{
		{"garbage", media.PC, "this is not SDP", media.ErrBadSDP},
		{"empty", media.PC, "", media.ErrBadSDP},
		{"unknown device", "tablet", "v=0", media.ErrBadSDP},
	} {
		if _, err := svc.Publish(context.Background(), 1, tc.device, tc.offer, nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A phone may not send its microphone; nobody sends two cameras.
	phone := newPublisher(t, true)
	offer, _ := phone.PC.CreateOffer(nil)
	if _, err := svc.Publish(context.Background(), 1, media.Phone, offer.SDP, nil); !errors.Is(err, media.ErrTooManyTrack) {
		t.Errorf("phone with a microphone: %v", err)
	}
	two := newPublisher(t, false)
	extra, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video2", "cam2")
	two.PC.AddTrack(extra)
	offer, _ = two.PC.CreateOffer(nil)
	if _, err := svc.Publish(context.Background(), 1, media.PC, offer.SDP, nil); !errors.Is(err, media.ErrTooManyTrack) {
		t.Errorf("two cameras: %v", err)
	}
	if err := svc.AddICECandidate(99, media.PC, map[string]any{"candidate": "x"}); !errors.Is(err, media.ErrNoPeer) {
		t.Errorf("candidate without a peer: %v", err)
	}
}

func storetestDB(t *testing.T) *store.DB { return storetest.NewDB(t, "sqlite") }

// A viewer (the console) gets the candidate's camera forwarded, packet for
// packet, and their microphone once it opens the candidate.
func TestForwardingToAViewer(t *testing.T) {
	reg := prometheus.NewRegistry()
	svc, err := media.New(media.Config{Bus: store.NewMemBus(), DataDir: t.TempDir(), LoopbackOnly: true, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	pub := newPublisher(t, true)
	pub.Connect(svc, 42, media.PC)
	go pub.Send(6 * time.Second)

	// The page's side of the viewer, made with pion.
	page := newPublisher(t, false).PC // a fresh connection with the default codecs
	for _, tr := range page.GetTransceivers() {
		page.RemoveTrack(tr.Sender())
	}
	got := make(chan string, 4)
	var packets atomic.Int64
	page.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		got <- tr.StreamID() + "/" + tr.Kind().String()
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			packets.Add(1)
		}
	})
	var v *media.Viewer
	msgs := make(chan map[string]any, 16)
	v, err = svc.View(func(m any) { msgs <- m.(map[string]any) })
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for m := range msgs {
			switch m["type"] {
			case "view_offer":
				page.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m["sdp"].(string)})
				ans, _ := page.CreateAnswer(nil)
				page.SetLocalDescription(ans)
				v.Answer(ans.SDP)
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
	v.Allow([]int64{41}) // someone else: nothing comes
	select {
	case s := <-got:
		t.Fatalf("got %s before being allowed", s)
	case <-time.After(500 * time.Millisecond):
	}
	v.Allow([]int64{42})
	select {
	case s := <-got:
		if s != "a42-pc/video" {
			t.Fatalf("first track %s", s)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("no video")
	}
	// The microphone is heard only once the candidate is opened.
	select {
	case s := <-got:
		t.Fatalf("got %s before the candidate was opened", s)
	case <-time.After(time.Second):
	}
	v.Focus(42)
	select {
	case s := <-got:
		if s != "a42-pc/audio" {
			t.Fatalf("track %s", s)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("no audio from the opened candidate")
	}
	time.Sleep(time.Second)
	if packets.Load() < 20 {
		t.Fatalf("%d packets forwarded", packets.Load())
	}
	mfs, _ := reg.Gather()
	var counted float64
	for _, mf := range mfs {
		if mf.GetName() == "examhall_media_rtp_packets_forwarded_total" {
			counted = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if counted < float64(packets.Load())/2 {
		t.Fatalf("forwarded counter %v for %d packets received by the viewer", counted, packets.Load())
	}
	v.Close()
}

// Each camera's figures are published every few seconds: rate, bitrate,
// frames per second and the resolution read from key frames.
func TestHealthFigures(t *testing.T) {
	bus := store.NewMemBus()
	sub, _ := bus.Subscribe(context.Background(), media.HealthTopic)
	defer sub.Close()
	svc, _ := newService(t, nil, bus)
	pub := newPublisher(t, false)
	pub.Connect(svc, 9, media.Phone)
	go pub.Send(7 * time.Second)
	for {
		select {
		case m := <-sub.C:
			var h media.Health
			json.Unmarshal(m.Data, &h)
			if h.FPS == 0 {
				continue // the first interval may start before the video
			}
			if h.AttemptID != 9 || h.Device != "phone" || h.Width != 640 || h.Height != 480 || h.FPS < 10 || h.FPS > 20 || h.Kbps < 100 {
				t.Fatalf("health %+v", h)
			}
			return
		case <-time.After(12 * time.Second):
			t.Fatal("no health figures")
		}
	}
}

func TestPairingLinks(t *testing.T) {
	db := storetestDB(t)
	attempt := attemptRow(t, db)
	svc, err := media.New(media.Config{DB: db, DataDir: t.TempDir(), LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	now := time.Now()
	link, qr, err := svc.Pair(ctx, attempt, "https://exam.example.org", now)
	if err != nil || !strings.HasPrefix(link, "https://exam.example.org/phone?t=") || !strings.HasPrefix(qr, "data:image/png;base64,") {
		t.Fatalf("pair: %q %v", link, err)
	}
	token := strings.TrimPrefix(link, "https://exam.example.org/phone?t=")
	if _, _, err := svc.Redeem(ctx, token, now.Add(media.PairingTTL+time.Second)); !errors.Is(err, media.ErrPairingExpired) {
		t.Fatalf("expired link: %v", err)
	}
	a, key, err := svc.Redeem(ctx, token, now.Add(time.Minute))
	if err != nil || a != attempt || key == "" {
		t.Fatalf("redeem: %d %q %v", a, key, err)
	}
	if _, _, err := svc.Redeem(ctx, token, now.Add(time.Minute)); !errors.Is(err, media.ErrPairingUsed) {
		t.Fatalf("reused link: %v", err)
	}
	if _, _, err := svc.Redeem(ctx, "forged", now); !errors.Is(err, media.ErrPairingUnknown) {
		t.Fatalf("forged link: %v", err)
	}
	if got, err := svc.Device(ctx, key); err != nil || got != attempt {
		t.Fatalf("device key: %d %v", got, err)
	}
	// Pairing a second phone revokes the first.
	link2, _, _ := svc.Pair(ctx, attempt, "http://h", now)
	if _, _, err := svc.Redeem(ctx, strings.TrimPrefix(link2, "http://h/phone?t="), now); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Device(ctx, key); !errors.Is(err, media.ErrDeviceRevoked) {
		t.Fatalf("first phone after a second pairing: %v", err)
	}
}

// Recordings left open by a crash are repaired when the service starts.
func TestRepairAllAtStart(t *testing.T) {
	db := storetestDB(t)
	attempt := attemptRow(t, db)
	svc, dir := newService(t, db, store.NewMemBus())
	pub := newPublisher(t, false)
	pub.Connect(svc, attempt, media.PC)
	pub.Send(3 * time.Second)
	var rec store.Recording
	db.Where("attempt_id = ?", attempt).Take(&rec)
	b, _ := os.ReadFile(rec.Path)
	svc.Close()
	// What a crash leaves: the file cut mid-write and its row still open.
	os.WriteFile(rec.Path, b[:len(b)*8/10], 0o600)
	db.Model(&rec).Updates(map[string]any{"state": "open", "ended_at": nil})
	fresh, err := media.New(media.Config{DB: db, DataDir: dir, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if n, err := fresh.RepairAll(context.Background()); err != nil || n != 1 {
		t.Fatalf("RepairAll: %d %v", n, err)
	}
	db.Take(&rec, rec.ID)
	if rec.State != "repaired" || rec.EndedAt == nil || rec.SizeBytes == 0 {
		t.Fatalf("row after repair %+v", rec)
	}
	dur, _ := strconv.ParseFloat(ffprobe(t, "-show_entries", "format=duration", "-of", "csv=p=0", rec.Path), 64)
	if dur < 1.5 {
		t.Fatalf("repaired file plays %.2f s", dur)
	}
}

// TestFaceCheck plays the face fixture (clean, no face, clean, two faces,
// clean; 2 s each) as a PC camera over WebRTC: the server's face check
// reports no face and two faces, each with its still, and their ends.
func TestFaceCheck(t *testing.T) {
	bus := store.NewMemBus()
	sub, _ := bus.Subscribe(context.Background(), store.SignalTopic)
	defer sub.Close()
	dir := t.TempDir()
	svc, err := media.New(media.Config{Bus: bus, DataDir: dir, LoopbackOnly: true, KeyFrameEvery: time.Second, FaceCheck: true, FaceEvery: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	pub := newPublisher(t, false)
	pub.IVF = "vision/testdata/face.ivf"
	pub.Connect(svc, 7, media.PC)
	go pub.Send(9 * time.Second)
	var got []string
	deadline := time.After(15 * time.Second)
	for len(got) < 4 {
		select {
		case m := <-sub.C:
			var s struct {
				Source, Kind, Phase string
				Detail              struct {
					Device, Still string
					Faces         int
				}
			}
			json.Unmarshal(m.Data, &s)
			if s.Source != "face" {
				continue
			}
			got = append(got, s.Kind+" "+s.Phase)
			if s.Detail.Device != media.PC {
				t.Errorf("device %q", s.Detail.Device)
			}
			if s.Phase == "start" {
				if _, err := os.Stat(filepath.Join(dir, "stills", "7", s.Detail.Still)); err != nil || s.Detail.Still == "" {
					t.Errorf("still of %s: %v", s.Kind, err)
				}
			}
		case <-deadline:
			t.Fatalf("signals so far: %v", got)
		}
	}
	want := "face_absent start,face_absent end,faces_multiple start,faces_multiple end"
	if strings.Join(got, ",") != want {
		t.Fatalf("signals %v, want %s", got, want)
	}
}

// The device check's test publish counts what reaches the server, shows it
// to its owner only, and a user may not run many at once.
func TestProbe(t *testing.T) {
	svc, _ := newService(t, nil, store.NewMemBus())
	p := newPublisher(t, false)
	offer, _ := p.PC.CreateOffer(nil)
	gathered := webrtc.GatheringCompletePromise(p.PC)
	p.PC.SetLocalDescription(offer)
	<-gathered
	id, answer, err := svc.Probe(context.Background(), 7, p.PC.LocalDescription().SDP)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	go p.Send(3 * time.Second)
	var res media.ProbeResult
	for i := 0; i < 100; i++ {
		if res, err = svc.ProbeResult(7, id); err != nil || res.Packets > 10 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || res.Packets <= 10 || res.State != "connected" {
		t.Fatalf("probe result %+v, %v", res, err)
	}
	if _, err := svc.ProbeResult(8, id); !errors.Is(err, media.ErrNoPeer) {
		t.Fatalf("another user's probe: %v", err)
	}
	if _, _, err := svc.Probe(context.Background(), 7, "garbage"); !errors.Is(err, media.ErrBadSDP) {
		t.Fatalf("garbage offer: %v", err)
	}
	second := newPublisher(t, false)
	o2, _ := second.PC.CreateOffer(nil)
	if _, _, err := svc.Probe(context.Background(), 7, o2.SDP); err != nil {
		t.Fatalf("a second probe: %v", err)
	}
	third := newPublisher(t, false)
	o3, _ := third.PC.CreateOffer(nil)
	if _, _, err := svc.Probe(context.Background(), 7, o3.SDP); !errors.Is(err, media.ErrProbeBusy) {
		t.Fatalf("a third probe at once: %v", err)
	}
}
