package vision

import (
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Signal kinds the analyzer reports (the proctor's names).
const (
	FaceAbsent    = "face_absent"
	FacesMultiple = "faces_multiple"
)

// Signal is a face condition starting or ending on one camera.
type Signal struct {
	AttemptID int64
	Device    string
	Kind      string
	Phase     string // "start" or "end"
	// Faces is the count that started or ended the condition.
	Faces int
	// Still is the file name of the frame that started it (starts only),
	// under StillDir/<attempt>/.
	Still string
}

// Config configures an Analyzer.
type Config struct {
	Detector *Detector
	// StillDir is where evidence frames are written, one folder per attempt.
	StillDir string
	// MinGap is the least time between two analysed frames of one camera
	// (default 2.5 s: the recorder asks for a key frame every 3 s, and key
	// frames sent after packet loss are skipped).
	MinGap time.Duration
	// AbsentOn lists the devices whose missing face is reported (default
	// "pc": the phone films the candidate from behind).
	AbsentOn []string
	// Signal receives each start and end. It must not block for long.
	Signal func(Signal)
	Logger *slog.Logger
}

// Analyzer counts faces in key frames handed to it by the media receive
// loops, on its own goroutine, and turns the counts into signals. Offer
// never blocks. Each camera keeps only its newest frame waiting, and the
// cameras with a frame waiting take turns in the order they offered: when
// the analysis cannot keep up, every camera is still looked at in turn, at
// the rate the analysis achieves (FramesPerCameraMinute), and a frame is
// dropped only because a newer one of its camera replaced it.
type Analyzer struct {
	cfg  Config
	wake chan struct{}

	mu    sync.Mutex
	cams  map[camKey]*camera
	turns []camKey    // cameras with a frame waiting, in turn
	done  []time.Time // when frames were analysed, over the last minute

	// Analysed counts frames analysed; Dropped frames replaced by a newer
	// one of their camera before their turn came.
	Analysed, Dropped atomic.Int64
}

type camKey struct {
	attempt int64
	device  string
}

type camera struct {
	offered  time.Time
	waiting  *job // the newest frame not yet analysed
	absent   bool
	multiple bool
}

type job struct {
	cam   camKey
	at    time.Time
	frame []byte
}

// NewAnalyzer returns an analyzer; call Run to start it.
func NewAnalyzer(cfg Config) *Analyzer {
	if cfg.MinGap == 0 {
		cfg.MinGap = 2500 * time.Millisecond
	}
	if cfg.AbsentOn == nil {
		cfg.AbsentOn = []string{"pc"}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Analyzer{cfg: cfg, wake: make(chan struct{}, 1), cams: map[camKey]*camera{}}
}

// Offer hands over a whole VP8 frame of a camera. Only key frames are
// taken, at most one per MinGap per camera; the frame is copied when taken
// and waits for its camera's turn, replacing an older one still waiting.
func (a *Analyzer) Offer(attemptID int64, device string, frame []byte) bool {
	if !IsKeyFrame(frame) {
		return false
	}
	now := time.Now()
	k := camKey{attemptID, device}
	a.mu.Lock()
	c := a.cams[k]
	if c == nil {
		c = &camera{}
		a.cams[k] = c
	}
	if !c.offered.IsZero() && now.Sub(c.offered) < a.cfg.MinGap {
		a.mu.Unlock()
		return false
	}
	c.offered = now
	if c.waiting != nil {
		a.Dropped.Add(1)
	} else {
		a.turns = append(a.turns, k)
	}
	c.waiting = &job{cam: k, at: now, frame: append([]byte(nil), frame...)}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
	return true
}

// next takes the frame of the camera whose turn it is, if any.
func (a *Analyzer) next() (job, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for len(a.turns) > 0 {
		k := a.turns[0]
		a.turns = a.turns[1:]
		if c := a.cams[k]; c != nil && c.waiting != nil {
			j := *c.waiting
			c.waiting = nil
			return j, true
		}
	}
	return job{}, false
}

// Run analyses frames until ctx ends.
func (a *Analyzer) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.wake:
		}
		for j, ok := a.next(); ok && ctx.Err() == nil; j, ok = a.next() {
			a.analyse(j)
		}
	}
}

// FramesPerCameraMinute is the rate the analysis achieved over the last
// minute: frames analysed per camera known to it.
func (a *Analyzer) FramesPerCameraMinute() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.trim(time.Now())
	if len(a.cams) == 0 {
		return 0
	}
	return float64(len(a.done)) / float64(len(a.cams))
}

// trim forgets analysis times over a minute old.
func (a *Analyzer) trim(now time.Time) {
	i := 0
	for i < len(a.done) && now.Sub(a.done[i]) > time.Minute {
		i++
	}
	a.done = a.done[i:]
}

// Forget ends a camera's open conditions (its connection is gone) and
// drops its state.
func (a *Analyzer) Forget(attemptID int64, device string) {
	k := camKey{attemptID, device}
	a.mu.Lock()
	c := a.cams[k]
	delete(a.cams, k)
	a.mu.Unlock()
	if c == nil {
		return
	}
	if c.absent {
		a.emit(Signal{AttemptID: attemptID, Device: device, Kind: FaceAbsent, Phase: "end"})
	}
	if c.multiple {
		a.emit(Signal{AttemptID: attemptID, Device: device, Kind: FacesMultiple, Phase: "end"})
	}
}

func (a *Analyzer) analyse(j job) {
	img, err := DecodeKeyFrame(j.frame)
	if err != nil {
		a.cfg.Logger.Debug("face analysis: decode", "attempt", j.cam.attempt, "device", j.cam.device, "err", err)
		return
	}
	faces := a.cfg.Detector.Faces(img)
	n := a.cfg.Detector.Count(faces)
	a.Analysed.Add(1)
	absentOn := false
	for _, d := range a.cfg.AbsentOn {
		absentOn = absentOn || d == j.cam.device
	}
	a.mu.Lock()
	now := time.Now()
	a.trim(now)
	a.done = append(a.done, now)
	c := a.cams[j.cam]
	if c == nil { // forgotten meanwhile
		a.mu.Unlock()
		return
	}
	var out []Signal
	change := func(open *bool, now bool, kind string) {
		if *open == now {
			return
		}
		*open = now
		s := Signal{AttemptID: j.cam.attempt, Device: j.cam.device, Kind: kind, Phase: "end", Faces: n}
		if now {
			s.Phase = "start"
		}
		out = append(out, s)
	}
	change(&c.absent, absentOn && len(faces) == 0, FaceAbsent)
	change(&c.multiple, n > 1, FacesMultiple)
	a.mu.Unlock()
	for _, s := range out {
		if s.Phase == "start" {
			name, err := a.saveStill(j, img, s.Kind)
			if err != nil {
				a.cfg.Logger.Warn("face analysis: save still", "attempt", s.AttemptID, "err", err)
			}
			s.Still = name
		}
		a.emit(s)
	}
}

func (a *Analyzer) emit(s Signal) {
	if a.cfg.Signal != nil {
		a.cfg.Signal(s)
	}
}

// saveStill writes the frame as JPEG evidence and returns its file name.
func (a *Analyzer) saveStill(j job, img image.Image, kind string) (string, error) {
	if a.cfg.StillDir == "" {
		return "", nil
	}
	dir := filepath.Join(a.cfg.StillDir, fmt.Sprint(j.cam.attempt))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	name := fmt.Sprintf("%d-%s-%s.jpg", j.at.UnixMilli(), j.cam.device, kind)
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return "", err
	}
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: 80}); err != nil {
		f.Close()
		return "", err
	}
	return name, f.Close()
}
