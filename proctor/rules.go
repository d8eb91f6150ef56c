package proctor

import (
	"encoding/json"
	"fmt"
	"time"
)

// Severity of a flag.
type Severity string

// Severities, from least to most urgent.
const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

func (s Severity) rank() int {
	switch s {
	case Critical:
		return 2
	case Warning:
		return 1
	}
	return 0
}

// Phase says whether a signal begins, ends or is a single moment.
type Phase string

// Signal phases.
const (
	Start   Phase = "start"
	End     Phase = "end"
	Instant Phase = "instant"
)

// Rule turns one kind of signal into flags.
type Rule struct {
	// Threshold is how long a condition must last to be flagged (0: at once).
	Threshold Duration `json:"threshold"`
	// Severity of the flag.
	Severity Severity `json:"severity"`
	// Merge joins a new occurrence into the last flag of its kind when it
	// comes within this time of that flag's last occurrence: ten blurs in
	// four seconds are one flag with a count of ten.
	Merge Duration `json:"merge"`
	// EscalateAt raises the severity to EscalateTo from the n-th flagged
	// occurrence of the kind in the attempt (0: never).
	EscalateAt int      `json:"escalate_at"`
	EscalateTo Severity `json:"escalate_to"`
	// SustainedAfter raises a flag to SustainedTo when one occurrence lasts
	// this long (0: never): a brief touch of the face is a note, a
	// sustained cover a violation.
	SustainedAfter Duration `json:"sustained_after,omitempty"`
	SustainedTo    Severity `json:"sustained_to,omitempty"`
	// Off turns the rule off.
	Off bool `json:"off,omitempty"`
}

// Duration is a time.Duration written as "3s" in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "3s" (or a number of seconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if err := json.Unmarshal(b, &secs); err != nil {
			return fmt.Errorf("a duration is \"3s\" or a number of seconds")
		}
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Signal kinds. The page reports the first group, the server the second,
// media and face analysis the last.
const (
	PageHidden      = "page_hidden"
	WindowBlur      = "window_blur"
	FullscreenExit  = "fullscreen_exit"
	Copy            = "copy"
	Cut             = "cut"
	Paste           = "paste"
	ContextMenu     = "context_menu"
	PrintScreen     = "print_screen"
	MultipleScreens = "multiple_screens"
	DevtoolsOpen    = "devtools_open"
	PageReload      = "page_reload"
	NetworkOffline  = "network_offline"

	ConnectionLost = "connection_lost"
	SecondLogin    = "second_login"

	VideoLost         = "video_lost"
	VideoFrozen       = "video_frozen"
	CameraEnded       = "camera_ended"
	PhoneDisconnected = "phone_disconnected"
	FaceAbsent        = "face_absent"
	FacesMultiple     = "faces_multiple"
	FaceOccluded      = "face_occluded"
	HeadTurned        = "head_turned"
	// FaceChecksDisagree: the page's face analysis and the server's have
	// disagreed about the PC camera (a face there or not, one or several).
	FaceChecksDisagree = "face_checks_disagree"
	// Talking: speech on the PC microphone (the page's voice activity
	// model, or the server's reading of the Opus packets' sizes).
	Talking = "talking"
)

// FaceAnalysis and VoiceAnalysis are the page's status reports (start:
// its face analysis, or its voice detection, runs; end: it stopped). They
// are recorded but raise no flag.
const (
	FaceAnalysis  = "face_analysis"
	VoiceAnalysis = "voice_analysis"
)

// PageSignals are the kinds a candidate's page may report.
var PageSignals = map[string]bool{
	PageHidden: true, WindowBlur: true, FullscreenExit: true, Copy: true, Cut: true, Paste: true, ContextMenu: true,
	PrintScreen: true, MultipleScreens: true, DevtoolsOpen: true, PageReload: true, NetworkOffline: true,
	CameraEnded: true, FaceAbsent: true, FacesMultiple: true, FaceOccluded: true, HeadTurned: true, FaceAnalysis: true,
	Talking: true, VoiceAnalysis: true,
}

func s(n int) Duration { return Duration(time.Duration(n) * time.Second) }

// DefaultRules are the rules an exam has unless it overrides them.
var DefaultRules = map[string]Rule{
	PageHidden:        {Threshold: s(3), Severity: Warning, Merge: s(10), EscalateAt: 3, EscalateTo: Critical},
	WindowBlur:        {Threshold: 0, Severity: Info, Merge: s(5), EscalateAt: 5, EscalateTo: Warning},
	FullscreenExit:    {Threshold: s(3), Severity: Warning, Merge: s(10), EscalateAt: 3, EscalateTo: Critical},
	Copy:              {Severity: Warning, Merge: s(5), EscalateAt: 3, EscalateTo: Critical},
	Cut:               {Severity: Warning, Merge: s(5), EscalateAt: 3, EscalateTo: Critical},
	Paste:             {Severity: Warning, Merge: s(5), EscalateAt: 3, EscalateTo: Critical},
	ContextMenu:       {Severity: Info, Merge: s(5)},
	PrintScreen:       {Severity: Warning, Merge: s(5), EscalateAt: 2, EscalateTo: Critical},
	MultipleScreens:   {Severity: Critical, Merge: s(60)},
	DevtoolsOpen:      {Severity: Warning, Merge: s(30), EscalateAt: 2, EscalateTo: Critical},
	PageReload:        {Severity: Info, Merge: s(30), EscalateAt: 3, EscalateTo: Warning},
	NetworkOffline:    {Threshold: s(10), Severity: Info, Merge: s(30), EscalateAt: 3, EscalateTo: Warning},
	ConnectionLost:    {Threshold: s(15), Severity: Info, Merge: s(30), EscalateAt: 3, EscalateTo: Warning},
	SecondLogin:       {Severity: Critical, Merge: s(60)},
	VideoLost:         {Threshold: s(3), Severity: Warning, Merge: s(10), EscalateAt: 3, EscalateTo: Critical},
	VideoFrozen:       {Threshold: s(5), Severity: Warning, Merge: s(10)},
	CameraEnded:       {Severity: Warning, Merge: s(10), EscalateAt: 2, EscalateTo: Critical},
	PhoneDisconnected: {Threshold: s(10), Severity: Warning, Merge: s(30), EscalateAt: 3, EscalateTo: Critical},
	// Face analysis: a short occurrence is an advisory note (info), a
	// sustained one a violation (no face > 5 s, covered > 3 s, head turned
	// more than 30 degrees for > 3 s); many notes become a warning. The
	// page and the server may each report one event, so counts run high.
	FaceAbsent:    {Threshold: s(2), Severity: Info, Merge: s(10), SustainedAfter: s(5), SustainedTo: Warning, EscalateAt: 5, EscalateTo: Warning},
	FacesMultiple: {Threshold: s(2), Severity: Critical, Merge: s(30)},
	FaceOccluded:  {Threshold: s(1), Severity: Info, Merge: s(10), SustainedAfter: s(3), SustainedTo: Warning, EscalateAt: 5, EscalateTo: Warning},
	HeadTurned:    {Threshold: s(1), Severity: Info, Merge: s(10), SustainedAfter: s(3), SustainedTo: Warning, EscalateAt: 5, EscalateTo: Warning},
	// Speech: a word or two is a note, talking on for 10 s a violation.
	Talking: {Threshold: 0, Severity: Info, Merge: s(10), SustainedAfter: s(10), SustainedTo: Warning, EscalateAt: 5, EscalateTo: Warning},
	// Both checks sample a few times a second or less and report changes
	// seconds apart, so only a lasting disagreement counts.
	FaceChecksDisagree: {Threshold: s(15), Severity: Info, Merge: s(60), EscalateAt: 3, EscalateTo: Warning},
}

// Rules are an exam's rules by signal kind.
type Rules map[string]Rule

// ParseRules reads an exam's overrides (JSON by kind) over the defaults.
func ParseRules(overrides string) (Rules, error) {
	r := Rules{}
	for k, v := range DefaultRules {
		r[k] = v
	}
	if overrides == "" || overrides == "{}" {
		return r, nil
	}
	var o map[string]Rule
	if err := json.Unmarshal([]byte(overrides), &o); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadRules, err)
	}
	for k, v := range o {
		if _, ok := DefaultRules[k]; !ok {
			return nil, fmt.Errorf("%w: unknown signal kind %q", ErrBadRules, k)
		}
		if v.Severity == "" {
			v.Severity = DefaultRules[k].Severity
		}
		r[k] = v
	}
	return r, nil
}

// Observation is one signal given to the rule engine.
type Observation struct {
	Kind  string
	Phase Phase
	At    time.Time
	// Duration of an End (as measured by the server; 0 for others).
	Duration time.Duration
	// Stream tells apart reports of one kind from different sources (the
	// page's and the server's face checks): each starts and ends its own
	// occurrence. Empty for kinds only one source reports.
	Stream string
	// Still names the evidence frame of a Start or Instant, if any.
	Still string
	// Note is a short word on the occurrence (the covered part, an angle).
	Note string
}

func (o Observation) key() string { return o.Kind + "|" + o.Stream }

// FlagState is a flag as the rule engine keeps it.
type FlagState struct {
	// ID is the stored flag's id, 0 until the caller stores it.
	ID       int64
	Kind     string
	Severity Severity
	Count    int
	FirstAt  time.Time
	LastAt   time.Time
	// Longest is the longest single occurrence so far.
	Longest time.Duration
	// Timeline is the evidence: every occurrence merged into the flag.
	Timeline []Occurrence
}

// Occurrence is one flagged signal in a flag's timeline.
type Occurrence struct {
	At       time.Time     `json:"at"`
	Duration time.Duration `json:"duration_ms"`
	// Stream is where it was seen (e.g. "page/" or "face/pc"), when a kind
	// has several.
	Stream string `json:"stream,omitempty"`
	// Still is the file name of its evidence frame, if any.
	Still string `json:"still,omitempty"`
	// Note is a short word on it (the covered part, an angle).
	Note string `json:"note,omitempty"`
}

// MarshalJSON writes the duration in milliseconds.
func (o Occurrence) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		At     time.Time `json:"at"`
		Ms     int64     `json:"duration_ms"`
		Stream string    `json:"stream,omitempty"`
		Still  string    `json:"still,omitempty"`
		Note   string    `json:"note,omitempty"`
	}{o.At, o.Duration.Milliseconds(), o.Stream, o.Still, o.Note})
}

// maxTimeline bounds a flag's evidence list.
const maxTimeline = 100

// Attempt is the rule engine's state for one attempt: what is going on now
// and the flags raised. It is not safe for concurrent use.
type Attempt struct {
	rules   Rules
	open    map[string]openSignal // by kind and stream
	last    map[string]*FlagState // the newest flag by kind
	counted map[string]int        // flagged occurrences by kind
}

type openSignal struct {
	kind, stream, still, note string
	since                     time.Time
	flagged                   *FlagState // the flag this occurrence already counts in
}

// NewAttempt starts the rule state of an attempt.
func NewAttempt(r Rules) *Attempt {
	return &Attempt{rules: r, open: map[string]openSignal{}, last: map[string]*FlagState{}, counted: map[string]int{}}
}

// Observe feeds a signal to the rules. It returns the flag that was raised
// or updated (nil when nothing is flagged).
func (a *Attempt) Observe(o Observation) *FlagState {
	r, ok := a.rules[o.Kind]
	if !ok || r.Off {
		return nil
	}
	threshold := time.Duration(r.Threshold)
	switch o.Phase {
	case Start:
		if _, ongoing := a.open[o.key()]; ongoing {
			return nil
		}
		a.open[o.key()] = openSignal{kind: o.Kind, stream: o.Stream, still: o.Still, note: o.Note, since: o.At}
		if threshold == 0 {
			return a.flagOpen(o.key(), r, o.At, 0)
		}
		return nil
	case End:
		op, ongoing := a.open[o.key()]
		delete(a.open, o.key())
		d := o.Duration
		if ongoing && d == 0 {
			d = o.At.Sub(op.since)
		}
		if op.flagged != nil {
			// Already flagged while it lasted: record how long it was.
			f := op.flagged
			for i := len(f.Timeline) - 1; i >= 0; i-- {
				if oc := &f.Timeline[i]; oc.Stream == op.stream && oc.At.Equal(op.since) {
					oc.Duration = d
					break
				}
			}
			f.Longest = max(f.Longest, d)
			sustain(f, r, d)
			return f
		}
		if d < threshold {
			return nil
		}
		f := a.raise(o.Kind, r, Occurrence{At: o.At.Add(-d), Duration: d, Stream: o.Stream, Still: op.still, Note: op.note})
		sustain(f, r, d)
		return f
	default: // Instant
		if threshold > 0 {
			return nil // a lasting condition reported as a moment cannot be judged
		}
		return a.raise(o.Kind, r, Occurrence{At: o.At, Stream: o.Stream, Still: o.Still, Note: o.Note})
	}
}

// Tick flags conditions that have now lasted past their threshold while
// still going on, so the invigilator sees them without waiting for the end.
func (a *Attempt) Tick(now time.Time) []*FlagState {
	var out []*FlagState
	for key, op := range a.open {
		r := a.rules[op.kind]
		d := now.Sub(op.since)
		if op.flagged != nil {
			if sustain(op.flagged, r, d) {
				op.flagged.Longest = max(op.flagged.Longest, d)
				out = append(out, op.flagged)
			}
			continue
		}
		if time.Duration(r.Threshold) == 0 || d < time.Duration(r.Threshold) {
			continue
		}
		f := a.flagOpen(key, r, op.since, d)
		sustain(f, r, d)
		out = append(out, f)
	}
	return out
}

func (a *Attempt) flagOpen(key string, r Rule, since time.Time, d time.Duration) *FlagState {
	op := a.open[key]
	op.flagged = a.raise(op.kind, r, Occurrence{At: since, Duration: d, Stream: op.stream, Still: op.still, Note: op.note})
	a.open[key] = op
	return op.flagged
}

// sustain raises a flag whose occurrence has lasted SustainedAfter; it
// reports whether the severity changed.
func sustain(f *FlagState, r Rule, d time.Duration) bool {
	if r.SustainedAfter == 0 || d < time.Duration(r.SustainedAfter) || r.SustainedTo.rank() <= f.Severity.rank() {
		return false
	}
	f.Severity = r.SustainedTo
	return true
}

// Open reports whether a condition of the kind is going on in the stream.
func (a *Attempt) Open(kind, stream string) bool {
	_, ok := a.open[Observation{Kind: kind, Stream: stream}.key()]
	return ok
}

// Since is when the condition of the kind in the stream began (zero if none).
func (a *Attempt) Since(kind, stream string) time.Time {
	return a.open[Observation{Kind: kind, Stream: stream}.key()].since
}

// raise records one flagged occurrence: a new flag, or a merge into the
// newest flag of the kind when it is recent enough.
func (a *Attempt) raise(kind string, r Rule, oc Occurrence) *FlagState {
	at, d := oc.At, oc.Duration
	a.counted[kind]++
	sev := r.Severity
	if r.EscalateAt > 0 && a.counted[kind] >= r.EscalateAt && r.EscalateTo.rank() > sev.rank() {
		sev = r.EscalateTo
	}
	f := a.last[kind]
	if f != nil && at.Sub(f.LastAt) <= time.Duration(r.Merge) {
		f.Count++
		f.LastAt = at
		f.Longest = max(f.Longest, d)
		if sev.rank() > f.Severity.rank() {
			f.Severity = sev
		}
		if len(f.Timeline) < maxTimeline {
			f.Timeline = append(f.Timeline, oc)
		}
		return f
	}
	f = &FlagState{Kind: kind, Severity: sev, Count: 1, FirstAt: at, LastAt: at, Longest: d, Timeline: []Occurrence{oc}}
	a.last[kind] = f
	return f
}
