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
	// Queue is how many frames may wait; more are dropped (default 4).
	Queue int
	// AbsentOn lists the devices whose missing face is reported (default
	// "pc": the phone films the candidate from behind).
	AbsentOn []string
	// Signal receives each start and end. It must not block for long.
	Signal func(Signal)
	Logger *slog.Logger
}

// Analyzer counts faces in key frames handed to it by the media receive
// loops, on its own goroutine, and turns the counts into signals. Offer
// never blocks: a frame that comes too soon or while the queue is full is
// dropped, so analysis can never slow the media.
type Analyzer struct {
	cfg  Config
	jobs chan job

	mu   sync.Mutex
	cams map[camKey]*camera

	// Analysed and Dropped count frames, for metrics and tests.
	Analysed, Dropped atomic.Int64
}

type camKey struct {
	attempt int64
	device  string
}

type camera struct {
	offered  time.Time
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
	if cfg.Queue == 0 {
		cfg.Queue = 4
	}
	if cfg.AbsentOn == nil {
		cfg.AbsentOn = []string{"pc"}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Analyzer{cfg: cfg, jobs: make(chan job, cfg.Queue), cams: map[camKey]*camera{}}
}

// Offer hands over a whole VP8 frame of a camera. Only key frames are
// taken, at most one per MinGap per camera; the frame is copied when taken.
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
	a.mu.Unlock()
	select {
	case a.jobs <- job{cam: k, at: now, frame: append([]byte(nil), frame...)}:
		return true
	default:
		a.Dropped.Add(1)
		return false
	}
}

// Run analyses frames until ctx ends.
func (a *Analyzer) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-a.jobs:
			a.analyse(j)
		}
	}
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
