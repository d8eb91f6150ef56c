package media_test

import (
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/media/mediatest"
	"github.com/examhall/examhall/store"
)

// attemptRows makes n attempts of one exam.
func attemptRows(t *testing.T, db *store.DB, n int) []int64 {
	p := &store.Programme{Code: "p", NameZh: "项目", NameEn: "P", Rules: "{}"}
	db.Create(p)
	ex := &store.Exam{ProgrammeID: p.ID, Code: "e", Kind: "formal", TitleZh: "理论", TitleEn: "Theory", DurationMinutes: 120, PassMark: 80, Blueprint: "{}", Policy: "{}", ProctorRules: "{}"}
	db.Create(ex)
	var ids []int64
	for i := range n {
		u := &store.User{Role: store.RoleCandidate, Username: fmt.Sprint("c", i), PasswordHash: "x", DisplayName: "考生"}
		db.Create(u)
		a := &store.Attempt{ExamID: ex.ID, CandidateID: u.ID, Kind: "formal", Status: "in_progress", Paper: "{}"}
		if err := db.Create(a).Error; err != nil {
			t.Fatal(err)
		}
		ids = append(ids, a.ID)
	}
	return ids
}

// A room of 15 candidates whose devices (PC and phone) vanish at once, as
// when their processes are killed or their network is cut: no hang-up, no
// packet more. Within 40 s the server has released every peer, closed
// every recording (so the review timeline lists it) and ended their
// goroutines.
func TestVanishedDevicesAreReleased(t *testing.T) {
	t.Run("a port per connection", func(t *testing.T) { testVanished(t, 0) })
	t.Run("one UDP port", func(t *testing.T) {
		l, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.LocalAddr().(*net.UDPAddr).Port
		l.Close()
		testVanished(t, port)
	})
}

func testVanished(t *testing.T, udpPort int) {
	const n = 15
	db := storetestDB(t)
	attempts := attemptRows(t, db, n)
	svc, err := media.New(media.Config{DB: db, Bus: store.NewMemBus(), DataDir: t.TempDir(), LoopbackOnly: true, UDPPort: udpPort, LostAfter: time.Second, KeyFrameEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	base := runtime.NumGoroutine()
	var pubs []*mediatest.Publisher
	for _, a := range attempts {
		pc, phone := newPublisher(t, true), newPublisher(t, false)
		pc.Connect(svc, a, media.PC)
		phone.Connect(svc, a, media.Phone)
		pubs = append(pubs, pc, phone)
		go pc.Send(time.Minute)
		go phone.Send(time.Minute)
	}
	recording := func() (n int64) {
		db.Model(&store.Recording{}).Where("state = 'open'").Count(&n)
		return n
	}
	for end := time.Now().Add(20 * time.Second); recording() < 2*n; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d of %d devices recording", recording(), 2*n)
		}
	}
	busy := runtime.NumGoroutine()
	vanished := time.Now()
	for _, p := range pubs {
		p.Vanish()
	}
	for recording() > 0 || svc.Tracks() > 0 {
		if time.Since(vanished) > 40*time.Second {
			t.Fatalf("40 s after the devices vanished: %d recordings still open, %d tracks received", recording(), svc.Tracks())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("every device released %.1f s after it vanished", time.Since(vanished).Seconds())
	// The test's own devices end too (their sockets are gone already);
	// what is left over the start is the server's.
	for _, p := range pubs {
		p.Close()
	}
	for end := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > base+10; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(end) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before the devices, %d with them, %d after they vanished:\n%s", base, busy, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
	}
}

// A device whose connection still answers but that sends no video (a page
// frozen in the background) is released after GoneAfter: its recording
// closes and the review lists it.
func TestSilentDeviceIsReleased(t *testing.T) {
	db := storetestDB(t)
	attempt := attemptRows(t, db, 1)[0]
	svc, err := media.New(media.Config{DB: db, Bus: store.NewMemBus(), DataDir: t.TempDir(), LoopbackOnly: true, LostAfter: time.Second, GoneAfter: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	pub := newPublisher(t, false)
	pub.Connect(svc, attempt, media.Phone)
	pub.Send(2 * time.Second)
	stopped := time.Now()
	var rec store.Recording
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		db.Where("attempt_id = ?", attempt).Take(&rec)
		if rec.State == "closed" {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("recording %q 15 s after the device fell silent with GoneAfter 3 s", rec.State)
		}
	}
	if d := time.Since(stopped); d < 3*time.Second {
		t.Fatalf("released %v after the device fell silent, before GoneAfter", d)
	}
	if st := pub.PC.ConnectionState(); st == webrtc.PeerConnectionStateConnected {
		// The server hung up: the device sees its connection end.
		for end := time.Now().Add(10 * time.Second); pub.PC.ConnectionState() == webrtc.PeerConnectionStateConnected; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatal("the device's connection is still up after the server released it")
			}
		}
	}
}
