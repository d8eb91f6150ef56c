package vision

import (
	"context"
	"fmt"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAnalyzerSignals plays the fixture's key frames as a PC and a phone
// camera and checks the signals: no face and two faces, each started once
// in its segment and ended in the next, with a still that shows it.
func TestAnalyzerSignals(t *testing.T) {
	d, err := NewDetector()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var mu sync.Mutex
	var got []Signal
	a := NewAnalyzer(Config{Detector: d, StillDir: dir, MinGap: time.Nanosecond, Signal: func(s Signal) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}})
	frames := readIVF(t, "testdata/face.ivf")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	// Each key frame is offered once the one before was analysed, as a
	// camera's come seconds apart. Generous: under the race detector on a
	// busy 2-core machine the detector takes over 30 s for these frames.
	deadline := time.Now().Add(3 * time.Minute)
	for _, device := range []string{"pc", "phone"} {
		for _, f := range frames {
			n := a.Analysed.Load()
			if !a.Offer(7, device, f.data) {
				continue
			}
			for a.Analysed.Load() == n && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	cancel()
	<-done
	if r, want := a.FramesPerCameraMinute(), float64(a.Analysed.Load())/2; r != want {
		t.Fatalf("achieved rate %.1f frames per camera-minute, want %.1f (%d frames, 2 cameras)", r, want, a.Analysed.Load())
	}
	a.Forget(7, "pc")
	a.Forget(7, "phone")
	if a.Dropped.Load() != 0 {
		t.Fatalf("%d dropped", a.Dropped.Load())
	}
	var seq []string
	for _, s := range got {
		seq = append(seq, fmt.Sprintf("%s %s %s %d", s.Device, s.Kind, s.Phase, s.Faces))
		if s.Phase == "start" {
			f, err := os.Open(filepath.Join(dir, "7", s.Still))
			if err != nil {
				t.Fatalf("still of %+v: %v", s, err)
			}
			img, err := jpeg.Decode(f)
			f.Close()
			if err != nil || img.Bounds().Dx() != 640 {
				t.Fatalf("still of %+v: %v", s, err)
			}
		} else if s.Still != "" {
			t.Errorf("an end with a still: %+v", s)
		}
	}
	want := []string{
		"pc face_absent start 0", "pc face_absent end 1",
		"pc faces_multiple start 2", "pc faces_multiple end 1",
		"phone faces_multiple start 2", "phone faces_multiple end 1",
	}
	if strings.Join(seq, "\n") != strings.Join(want, "\n") {
		t.Fatalf("signals:\n%s\nwant:\n%s", strings.Join(seq, "\n"), strings.Join(want, "\n"))
	}
}

// TestAnalyzerTakesTurns checks that Offer never waits and that cameras
// take turns: inter frames and frames too soon after the last are refused,
// a newer frame of a camera replaces its older one still waiting, and each
// camera with a frame waiting is analysed once before any is again.
func TestAnalyzerTakesTurns(t *testing.T) {
	d, err := NewDetector()
	if err != nil {
		t.Fatal(err)
	}
	a := NewAnalyzer(Config{Detector: d, MinGap: time.Nanosecond})
	var key, inter []byte
	for _, f := range readIVF(t, "testdata/face.ivf") {
		if IsKeyFrame(f.data) && key == nil {
			key = f.data
		} else if !IsKeyFrame(f.data) && inter == nil {
			inter = f.data
		}
	}
	if a.Offer(1, "pc", inter) {
		t.Fatal("took an inter frame")
	}
	// A busy camera offers 20 frames while two others offer one each.
	for i := range 20 {
		if !a.Offer(1, "pc", key) {
			t.Fatalf("refused frame %d of a camera past MinGap", i)
		}
		time.Sleep(time.Microsecond)
	}
	a.Offer(2, "pc", key)
	a.Offer(3, "phone", key)
	var order []string
	for j, ok := a.next(); ok; j, ok = a.next() {
		order = append(order, fmt.Sprint(j.cam.attempt, j.cam.device))
	}
	if got := strings.Join(order, ","); got != "1pc,2pc,3phone" {
		t.Fatalf("turns %s, want each camera once in the order it offered", got)
	}
	if a.Dropped.Load() != 19 {
		t.Fatalf("dropped %d, want the busy camera's 19 replaced frames", a.Dropped.Load())
	}
	gap := NewAnalyzer(Config{Detector: d, MinGap: time.Hour})
	if !gap.Offer(1, "pc", key) || gap.Offer(1, "pc", key) {
		t.Fatal("took a second frame within MinGap")
	}
}
