package vision

import (
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
