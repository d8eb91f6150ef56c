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
	a := NewAnalyzer(Config{Detector: d, StillDir: dir, MinGap: time.Nanosecond, Queue: 200, Signal: func(s Signal) {
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	}})
	frames := readIVF(t, "testdata/face.ivf")
	keys := int64(0)
	for _, f := range frames {
		if IsKeyFrame(f.data) {
			keys++
		}
	}
	for _, device := range []string{"pc", "phone"} {
		for _, f := range frames {
			a.Offer(7, device, f.data)
			time.Sleep(time.Microsecond) // distinct offer times
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	// Generous: under the race detector on a busy 2-core machine the
	// detector takes over 30 s for these frames.
	deadline := time.Now().Add(3 * time.Minute)
	for a.Analysed.Load()+a.Dropped.Load() < 2*keys && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
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

// TestAnalyzerDropsWhenBusy checks that Offer never waits: inter frames,
// frames too soon after the last, and frames beyond a full queue are refused.
func TestAnalyzerDropsWhenBusy(t *testing.T) {
	d, err := NewDetector()
	if err != nil {
		t.Fatal(err)
	}
	a := NewAnalyzer(Config{Detector: d, MinGap: time.Hour, Queue: 1})
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
	if !a.Offer(1, "pc", key) {
		t.Fatal("refused the first key frame")
	}
	if a.Offer(1, "pc", key) {
		t.Fatal("took a second frame within MinGap")
	}
	if a.Offer(2, "pc", key) {
		t.Fatal("took a frame beyond the queue")
	}
	if a.Dropped.Load() != 1 {
		t.Fatalf("dropped %d", a.Dropped.Load())
	}
}
