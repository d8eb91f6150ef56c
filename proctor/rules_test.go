package proctor

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

type step struct {
	kind  string
	phase Phase
	at    float64
	tick  bool // a Tick at this time instead of an observation
}

func TestRules(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
		// want: after the last step, the flags by kind: count and severity;
		// flags is how many distinct flags were raised.
		flags    int
		count    int
		severity Severity
		longest  time.Duration
	}{
		{"a short absence is not flagged", []step{{PageHidden, Start, 0, false}, {PageHidden, End, 2, false}}, 0, 0, "", 0},
		{"an absence over 3 s is a warning", []step{{PageHidden, Start, 0, false}, {PageHidden, End, 8, false}}, 1, 1, Warning, 8 * time.Second},
		{"flagged while it lasts, updated at the end", []step{{PageHidden, Start, 0, false}, {"", "", 4, true}, {PageHidden, End, 9, false}}, 1, 1, Warning, 9 * time.Second},
		{"ten blurs in four seconds are one flag with a count", blurs(10, 0.4), 1, 10, Warning, 100 * time.Millisecond},
		{"three blurs stay info", blurs(3, 0.4), 1, 3, Info, 100 * time.Millisecond},
		{"blurs far apart are separate flags", []step{{WindowBlur, Start, 0, false}, {WindowBlur, End, 1, false}, {WindowBlur, Start, 60, false}, {WindowBlur, End, 61, false}}, 2, 1, Info, time.Second},
		{"the third tab switch is critical", []step{
			{PageHidden, Start, 0, false}, {PageHidden, End, 5, false},
			{PageHidden, Start, 100, false}, {PageHidden, End, 105, false},
			{PageHidden, Start, 200, false}, {PageHidden, End, 205, false}}, 3, 1, Critical, 5 * time.Second},
		{"a second screen is critical at once", []step{{MultipleScreens, Instant, 0, false}}, 1, 1, Critical, 0},
		{"paste is a warning", []step{{Paste, Instant, 0, false}}, 1, 1, Warning, 0},
		{"a lasting condition sent as an instant is ignored", []step{{PageHidden, Instant, 0, false}}, 0, 0, "", 0},
		{"an end without a start uses its duration", []step{{FaceAbsent, End, 10, false}}, 0, 0, "", 0},
		{"no face for over 5 s", []step{{FaceAbsent, Start, 0, false}, {"", "", 6, true}}, 1, 1, Warning, 6 * time.Second},
		{"no face for 3 s is a note", []step{{FaceAbsent, Start, 0, false}, {"", "", 2.5, true}, {FaceAbsent, End, 3, false}}, 1, 1, Info, 3 * time.Second},
		{"a touch of the face is a note", []step{{FaceOccluded, Start, 0, false}, {FaceOccluded, End, 1.5, false}}, 1, 1, Info, 1500 * time.Millisecond},
		{"a sustained cover is a warning while it lasts", []step{{FaceOccluded, Start, 0, false}, {"", "", 1.2, true}, {"", "", 3.1, true}}, 1, 1, Warning, 3100 * time.Millisecond},
		{"a cover reported late is judged by its length", []step{{FaceOccluded, Start, 0, false}, {FaceOccluded, End, 4, false}}, 1, 1, Warning, 4 * time.Second},
		{"unknown kinds are ignored", []step{{"telepathy", Instant, 0, false}}, 0, 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := ParseRules("")
			a := NewAttempt(r)
			seen := map[*FlagState]bool{}
			var last *FlagState
			for _, st := range tt.steps {
				var fs []*FlagState
				if st.tick {
					fs = a.Tick(at(st.at))
				} else if f := a.Observe(Observation{Kind: st.kind, Phase: st.phase, At: at(st.at)}); f != nil {
					fs = []*FlagState{f}
				}
				for _, f := range fs {
					seen[f] = true
					last = f
				}
			}
			if len(seen) != tt.flags {
				t.Fatalf("%d flags, want %d", len(seen), tt.flags)
			}
			if tt.flags == 0 {
				return
			}
			if last.Count != tt.count || last.Severity != tt.severity || last.Longest != tt.longest {
				t.Fatalf("last flag: count %d severity %s longest %v; want %d %s %v", last.Count, last.Severity, last.Longest, tt.count, tt.severity, tt.longest)
			}
			if len(last.Timeline) != last.Count {
				t.Fatalf("timeline has %d entries for a count of %d", len(last.Timeline), last.Count)
			}
		})
	}
}

func blurs(n int, every float64) []step {
	var out []step
	for i := range n {
		out = append(out, step{WindowBlur, Start, float64(i) * every, false}, step{WindowBlur, End, float64(i)*every + 0.1, false})
	}
	return out
}

func TestParseRules(t *testing.T) {
	r, err := ParseRules(`{"page_hidden":{"threshold":"10s","severity":"critical"},"window_blur":{"off":true}}`)
	if err != nil {
		t.Fatal(err)
	}
	a := NewAttempt(r)
	a.Observe(Observation{Kind: PageHidden, Phase: Start, At: at(0)})
	if f := a.Observe(Observation{Kind: PageHidden, Phase: End, At: at(8)}); f != nil {
		t.Fatal("8 s flagged under a 10 s threshold")
	}
	a.Observe(Observation{Kind: PageHidden, Phase: Start, At: at(20)})
	if f := a.Observe(Observation{Kind: PageHidden, Phase: End, At: at(31)}); f == nil || f.Severity != Critical {
		t.Fatalf("11 s: %+v", f)
	}
	if f := a.Observe(Observation{Kind: WindowBlur, Phase: Start, At: at(40)}); f != nil {
		t.Fatal("a rule turned off still flags")
	}
	for _, bad := range []string{`{"nonsense":{}}`, `{"page_hidden":{"threshold":"soon"}}`, `[`} {
		if _, err := ParseRules(bad); !errors.Is(err, ErrBadRules) && err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestStreams checks that the page's and the server's reports of one kind
// are separate occurrences: one ending does not end the other, and each
// keeps its evidence frame.
func TestStreams(t *testing.T) {
	r, _ := ParseRules("")
	a := NewAttempt(r)
	a.Observe(Observation{Kind: FaceAbsent, Phase: Start, At: at(0), Stream: "page/", Still: "p.jpg"})
	a.Observe(Observation{Kind: FaceAbsent, Phase: Start, At: at(1), Stream: "face/pc", Still: "s.jpg", Note: "n"})
	if f := a.Observe(Observation{Kind: FaceAbsent, Phase: End, At: at(1.5), Stream: "page/"}); f != nil {
		t.Fatalf("1.5 s flagged: %+v", f)
	}
	if !a.Open(FaceAbsent, "face/pc") || a.Open(FaceAbsent, "page/") {
		t.Fatal("the page's end ended the server's occurrence")
	}
	fs := a.Tick(at(7))
	if len(fs) != 1 || fs[0].Timeline[0].Still != "s.jpg" || fs[0].Timeline[0].Stream != "face/pc" || fs[0].Timeline[0].Note != "n" || fs[0].Severity != Warning {
		t.Fatalf("tick: %+v", fs)
	}
	f := a.Observe(Observation{Kind: FaceAbsent, Phase: End, At: at(9), Stream: "face/pc"})
	if f == nil || f.Longest != 8*time.Second || f.Timeline[0].Duration != 8*time.Second {
		t.Fatalf("end: %+v", f)
	}
}
