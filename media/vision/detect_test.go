package vision

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
	"time"
)

// segments of testdata/face.ivf (see testdata/make.sh): 2 s each.
var segments = []struct {
	name  string
	faces int // people counted; -1: either way, but someone is there
}{{"clean", 1}, {"none", 0}, {"clean", 1}, {"two", 2}, {"clean", 1}, {"covered", -1}, {"dim", 1}, {"turned", -1}}

func segmentAt(at time.Duration) int { return min(int(at/(2*time.Second)), len(segments)-1) }

// TestFacesOnKeyFrames decodes every key frame of the fixture and checks
// the face count of each segment. pigo is a frontal detector: a covered or
// turned face may go either way (-1), which is why the page's analysis and
// the proctor's rules judge those.
func TestFacesOnKeyFrames(t *testing.T) {
	d, err := NewDetector()
	if err != nil {
		t.Fatal(err)
	}
	keys := 0
	for _, f := range readIVF(t, "testdata/face.ivf") {
		if !IsKeyFrame(f.data) {
			if _, err := DecodeKeyFrame(f.data); err != ErrNotKeyFrame {
				t.Fatalf("inter frame at %v: %v", f.at, err)
			}
			continue
		}
		keys++
		img, err := DecodeKeyFrame(f.data)
		if err != nil {
			t.Fatalf("key frame at %v: %v", f.at, err)
		}
		if img.Rect.Dx() != 640 || img.Rect.Dy() != 480 {
			t.Fatalf("size %v", img.Rect)
		}
		seg := segments[segmentAt(f.at)]
		got := d.Faces(img)
		n := d.Count(got)
		t.Logf("%5.2fs %-7s %d faces %v", f.at.Seconds(), seg.name, n, got)
		if seg.faces >= 0 && n != seg.faces {
			t.Errorf("%v (%s): %d faces, want %d: %v", f.at, seg.name, n, seg.faces, got)
		}
		if seg.faces != 0 && len(got) == 0 {
			t.Errorf("%v (%s): nobody there", f.at, seg.name)
		}
	}
	if keys < 40 {
		t.Fatalf("only %d key frames", keys)
	}
}

// A key frame that declares a picture larger than any camera is refused
// before the decoder allocates it (16383x16383 would take 388 MiB).
func TestHugeKeyFrameRefused(t *testing.T) {
	var key []byte
	for _, f := range readIVF(t, "testdata/face.ivf") {
		if IsKeyFrame(f.data) {
			key = bytes.Clone(f.data)
			break
		}
	}
	key[6], key[7], key[8], key[9] = 0xff, 0x3f, 0xff, 0x3f
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := DecodeKeyFrame(key)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrFrameSize) {
		t.Fatalf("a 16383x16383 frame: %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("refusing it allocated %d bytes", grew)
	}
}

// FuzzDecodeKeyFrame feeds the decoder what a camera's RTP could carry: it
// returns an error or a picture, never panics, never decodes a huge one.
func FuzzDecodeKeyFrame(f *testing.F) {
	for i, fr := range readIVF(f, "testdata/face.ivf") {
		if IsKeyFrame(fr.data) && i < 40 {
			f.Add(fr.data)
		}
	}
	f.Add([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0xff, 0x3f, 0xff, 0x3f})
	f.Fuzz(func(t *testing.T, frame []byte) {
		img, err := DecodeKeyFrame(frame)
		if err == nil && (img.Bounds().Dx() > MaxWidth || img.Bounds().Dy() > MaxHeight) {
			t.Fatalf("decoded a %v picture", img.Bounds())
		}
	})
}

// TestCount checks who counts as a person: a clear face on its own, and a
// faint one only beside a clear one, of about its size, at its height and
// apart from it.
func TestCount(t *testing.T) {
	d := &Detector{MinScore: 20, PresenceScore: 10}
	clear := Face{X: 100, Y: 100, Size: 50, Score: 60}
	for _, c := range []struct {
		name  string
		faces []Face
		want  int
	}{
		{"clear alone", []Face{clear}, 1},
		{"faint alone", []Face{{100, 100, 50, 15}}, 0},
		{"two clear", []Face{clear, {300, 180, 30, 25}}, 2},
		{"faint beside clear", []Face{clear, {170, 108, 42, 12}}, 2},
		{"faint beside, on the left", []Face{clear, {20, 95, 60, 11}}, 2},
		{"faint overlapping the clear one", []Face{clear, {140, 100, 50, 12}}, 1},
		{"faint, much smaller", []Face{clear, {200, 100, 30, 12}}, 1},
		{"faint, much larger", []Face{clear, {220, 100, 80, 12}}, 1},
		{"faint, higher up", []Face{clear, {200, 70, 50, 12}}, 1},
		{"two faint side by side", []Face{{100, 100, 50, 15}, {200, 100, 50, 12}}, 0},
		{"under presence beside clear", []Face{clear, {200, 100, 50, 8}}, 1},
	} {
		if got := d.Count(c.faces); got != c.want {
			t.Errorf("%s: %d people, want %d", c.name, got, c.want)
		}
	}
}
