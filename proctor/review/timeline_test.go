package review

import (
	"testing"
	"time"

	"github.com/examhall/examhall/store"
)

func rec(id int64, device string, start, end float64) store.Recording {
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	s := t0.Add(time.Duration(start * float64(time.Second)))
	e := t0.Add(time.Duration(end * float64(time.Second)))
	return store.Recording{ID: id, Device: device, StartedAt: s, EndedAt: &e}
}

func TestTimelineAcrossAReconnection(t *testing.T) {
	// The phone joins 2.5 s after the PC; the PC's connection drops at 60 s
	// and comes back at 75 s; the phone's file rolls over at 300 s.
	tl := Build([]store.Recording{
		rec(1, "pc", 0, 60), rec(2, "phone", 2.5, 300), rec(3, "pc", 75, 400), rec(4, "phone", 300.1, 410),
		{ID: 5, Device: "pc", StartedAt: time.Now()}, // still being written
	})
	if len(tl.Segments) != 4 || tl.Duration != 410000 {
		t.Fatalf("timeline %+v", tl)
	}
	want := []Segment{
		{1, "pc", 0, 60000, 0}, {2, "phone", 2500, 300000, 0}, {3, "pc", 75000, 400000, 15000}, {4, "phone", 300100, 410000, 0},
	}
	for i, w := range want {
		if tl.Segments[i] != w {
			t.Errorf("segment %d = %+v, want %+v", i, tl.Segments[i], w)
		}
	}
	for _, tc := range []struct {
		device string
		at     int64
		rec    int64
		pos    int64
		ok     bool
	}{
		{"pc", 1000, 1, 1000, true},
		{"phone", 1000, 0, 0, false}, // not there yet
		{"phone", 10000, 2, 7500, true},
		{"pc", 70000, 0, 0, false}, // the technical interruption
		{"pc", 80000, 3, 5000, true},
		{"phone", 305000, 4, 4900, true},
	} {
		seg, pos, ok := tl.At(tc.device, tc.at)
		if ok != tc.ok || seg.RecordingID != tc.rec || pos != tc.pos {
			t.Errorf("At(%s, %d) = %d %d %v, want %d %d %v", tc.device, tc.at, seg.RecordingID, pos, ok, tc.rec, tc.pos, tc.ok)
		}
	}
	if empty := Build(nil); len(empty.Segments) != 0 || empty.Duration != 0 {
		t.Fatalf("empty timeline %+v", empty)
	}
}
