package proctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"gorm.io/gorm"

	"github.com/examhall/examhall/proctor/review"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/i18n"
)

// Bus topics of the proctor.
const (
	// FlagTopic carries every new or updated flag to the consoles.
	FlagTopic = "proctor.flags"
	// CandidateTopic carries messages for a candidate's page.
	CandidateTopic = "proctor.candidate"
	// ActivityTopic carries acknowledgements and presence to the consoles.
	ActivityTopic = "proctor.activity"
)

// Terminator ends an attempt for cheating (the exam engine does).
type Terminator interface {
	Terminate(ctx context.Context, attemptID int64, reason string) error
}

// Admitter admits or refuses a candidate before the exam (the exam engine does).
type Admitter interface {
	Admit(ctx context.Context, attemptID, by int64, force bool) error
	Refuse(ctx context.Context, attemptID, by int64, reason string) error
	// ReadyToAdmit picks the candidates among ids who finished every step
	// and wait to be admitted.
	ReadyToAdmit(ctx context.Context, ids []int64) ([]int64, error)
}

// Config configures the proctor service.
type Config struct {
	DB         *store.DB
	Bus        store.Bus
	Logger     *slog.Logger
	Terminator Terminator
	Admitter   Admitter
	// Metrics, when set, gets the flag latency histogram.
	Metrics prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// TickEvery is how often lasting conditions are checked (default 500 ms).
	TickEvery time.Duration
}

// Service turns signals into flags, keeps them, streams them to the
// invigilators' consoles, and carries out the invigilators' actions.
type Service struct {
	cfg     Config
	db      *store.DB
	bus     store.Bus
	log     *slog.Logger
	latency prometheus.Histogram
	reviews *review.Reviews

	mu       sync.Mutex
	attempts map[int64]*attemptState
	rules    map[int64]Rules // by exam
}

type attemptState struct {
	mu sync.Mutex
	// saving is held while a flag of the attempt is written, so two
	// sources raising the same flag at once write it once, newest last.
	saving sync.Mutex
	info   AttemptInfo
	rules  *Attempt
	// connected is whether the candidate's PC socket is up, as last signalled.
	connected bool
	seenAt    time.Time
	// pageFaces is whether the page's face analysis runs; disagree whether
	// it and the server's currently disagree about the PC camera.
	pageFaces, disagree bool
	// pageVoice is whether the page's voice detection runs.
	pageVoice bool
	// pageRate bounds the signals the page may send.
	pageRate *rate.Limiter
}

// A page sends a signal when something happens (focus, full screen, face):
// a few a minute, and a page back from an outage flushes what it kept.
// PageSignalsPerSecond (with a burst of PageSignalBurst)
// bounds a page gone wrong or a client flooding the proctor.
const (
	PageSignalsPerSecond = 5
	PageSignalBurst      = 60
)

// AttemptInfo is who and where an attempt is.
type AttemptInfo struct {
	AttemptID     int64  `json:"attempt_id"`
	ExamID        int64  `json:"-"`
	SessionID     int64  `json:"session_id"`
	CandidateID   int64  `json:"candidate_id"`
	Name          string `json:"name"`
	Ticket        string `json:"ticket"`
	SeatNo        int    `json:"seat_no"`
	RoomID        int64  `json:"room_id"`
	RoomName      string `json:"room_name"`
	InvigilatorID *int64 `json:"invigilator_id"`
}

// New returns the service; call Run to start it.
func New(cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.TickEvery == 0 {
		cfg.TickEvery = 500 * time.Millisecond
	}
	s := &Service{cfg: cfg, db: cfg.DB, bus: cfg.Bus, log: cfg.Logger, reviews: review.New(cfg.DB), attempts: map[int64]*attemptState{}, rules: map[int64]Rules{}}
	s.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "examhall_flag_latency_seconds",
		Help:    "From a signal reaching the server to its flag being sent to a console.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	if cfg.Metrics != nil {
		if err := cfg.Metrics.Register(s.latency); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// ObserveLatency records how long a flag took from signal to console.
func (s *Service) ObserveLatency(d time.Duration) { s.latency.Observe(d.Seconds()) }

// Run takes signals from the bus and checks lasting conditions until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	sub, err := s.bus.Subscribe(ctx, store.SignalTopic)
	if err != nil {
		return err
	}
	defer sub.Close()
	tick := time.NewTicker(s.cfg.TickEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-sub.C:
			if !ok {
				return nil
			}
			var sig store.SignalMessage
			if err := json.Unmarshal(m.Data, &sig); err != nil {
				s.log.Warn("bad signal on the bus", "err", err)
				continue
			}
			if err := s.Observe(ctx, sig.AttemptID, sig.Source, sig.Kind, Phase(sig.Phase), sig.Detail); err != nil && !errors.Is(err, ErrNoAttempt) {
				s.log.Warn("signal", "attempt", sig.AttemptID, "kind", sig.Kind, "err", err)
			}
		case <-tick.C:
			s.tick(ctx)
		}
	}
}

// allowPage says whether the page may send another signal now.
func (st *attemptState) allowPage() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.pageRate == nil {
		st.pageRate = rate.NewLimiter(PageSignalsPerSecond, PageSignalBurst)
	}
	return st.pageRate.Allow()
}

// state loads an attempt's info and rules once.
func (s *Service) state(ctx context.Context, attemptID int64) (*attemptState, error) {
	s.mu.Lock()
	st := s.attempts[attemptID]
	s.mu.Unlock()
	if st != nil {
		return st, nil
	}
	info, err := s.Info(ctx, attemptID)
	if err != nil {
		return nil, err
	}
	rules, err := s.examRules(ctx, info.ExamID)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st = s.attempts[attemptID]; st == nil {
		st = &attemptState{info: *info, rules: NewAttempt(rules)}
		s.attempts[attemptID] = st
	}
	return st, nil
}

func (s *Service) examRules(ctx context.Context, examID int64) (Rules, error) {
	s.mu.Lock()
	r := s.rules[examID]
	s.mu.Unlock()
	if r != nil {
		return r, nil
	}
	var ex store.Exam
	if err := s.db.WithContext(ctx).Take(&ex, examID).Error; err != nil {
		return nil, err
	}
	r, err := ParseRules(ex.ProctorRules)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.rules[examID] = r
	s.mu.Unlock()
	return r, nil
}

// Info finds who and where an attempt is. Mock attempts have no seat and
// are not proctored: ErrNoAttempt.
func (s *Service) Info(ctx context.Context, attemptID int64) (*AttemptInfo, error) {
	var info AttemptInfo
	err := s.db.WithContext(ctx).Table("attempts").
		Select(`attempts.id AS attempt_id, attempts.exam_id, attempts.session_id, attempts.candidate_id, users.display_name AS name,
			seats.ticket, seats.seat_no, seats.room_id, rooms.name AS room_name, seats.invigilator_id`).
		Joins("JOIN seats ON seats.id = attempts.seat_id").
		Joins("JOIN users ON users.id = attempts.candidate_id").
		Joins("JOIN rooms ON rooms.id = seats.room_id").
		Where("attempts.id = ?", attemptID).Take(&info).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNoAttempt
	}
	return &info, err
}

// Observe records a signal about an attempt and runs the rules on it.
// source is "page", "server", "media" or "face"; the page may only send
// the kinds it can see (PageSignals).
func (s *Service) Observe(ctx context.Context, attemptID int64, source, kind string, phase Phase, detail map[string]any) error {
	received := time.Now()
	if source == "page" && !PageSignals[kind] {
		return fmt.Errorf("%w: %q", ErrBadSignal, kind)
	}
	if _, ok := DefaultRules[kind]; !ok && kind != "connected" && kind != FaceAnalysis && kind != VoiceAnalysis {
		return fmt.Errorf("%w: %q", ErrBadSignal, kind)
	}
	if phase != Start && phase != End && phase != Instant {
		return fmt.Errorf("%w: phase %q", ErrBadSignal, phase)
	}
	st, err := s.state(ctx, attemptID)
	if err == nil && source == "page" && !st.allowPage() {
		return ErrTooManySignals
	}
	if err != nil {
		return err
	}
	now := s.now()
	stream, still, note := streamOf(source, kind, detail), stillOf(detail), noteOf(detail)
	st.mu.Lock()
	if kind == "connected" || kind == ConnectionLost {
		st.connected = kind == "connected" || phase == End
		st.seenAt = now
	}
	if kind == FaceAnalysis {
		st.pageFaces = phase != End
	}
	if kind == VoiceAnalysis {
		st.pageVoice = phase != End
	}
	var dur time.Duration
	if phase == End {
		if since := st.rules.Since(kind, stream); !since.IsZero() {
			dur = now.Sub(since)
		}
		// A page that was offline sends start and end together after
		// reconnecting; then the duration it measured is the better one.
		if ms, ok := detail["duration_ms"].(float64); ok {
			if d := time.Duration(ms) * time.Millisecond; d > dur && d < 4*time.Hour {
				dur = d
			}
		}
	}
	var f *FlagState
	// The server hears sound, not speech: while the page's voice model
	// listens, the server's talking is recorded but flags nothing.
	if kind != Talking || source == "page" || !st.pageVoice || phase == End && st.rules.Open(kind, stream) {
		f = st.rules.Observe(Observation{Kind: kind, Phase: phase, At: now, Duration: dur, Stream: stream, Still: still, Note: note})
	}
	disagree := st.compareFaces()
	st.mu.Unlock()
	if disagree != "" {
		defer func() {
			if err := s.Observe(ctx, attemptID, "server", FaceChecksDisagree, disagree, nil); err != nil {
				s.log.Warn("signal", "attempt", attemptID, "kind", FaceChecksDisagree, "err", err)
			}
		}()
	}

	d, _ := json.Marshal(detail)
	if detail == nil {
		d = []byte("{}")
	}
	sig := &store.Signal{AttemptID: attemptID, Kind: kind, Source: source, Phase: string(phase), At: now, DurationMs: dur.Milliseconds(), Detail: string(d)}
	if err := s.db.WithContext(ctx).Create(sig).Error; err != nil {
		return err
	}
	if kind == "connected" || kind == ConnectionLost {
		s.publish(ActivityTopic, Activity{Type: "presence", AttemptID: attemptID, Connected: st.connected, At: now})
	}
	if f != nil {
		return s.saveFlag(ctx, st, f, received)
	}
	return nil
}

// Streams of the face checks: the page's, and the server's on each camera.
const (
	pageFaceStream = "page"
	pcFaceStream   = "face/pc"
)

// streamOf tells apart the sources of the face kinds and of talking,
// which the page and the server both report; other kinds have one source.
func streamOf(source, kind string, detail map[string]any) string {
	switch kind {
	case FaceAbsent, FacesMultiple, FaceOccluded, HeadTurned:
		if source == "page" {
			return pageFaceStream
		}
		device, _ := detail["device"].(string)
		return source + "/" + device
	case Talking:
		return source
	}
	return ""
}

// stillName is how evidence frames are named (see media/vision and the
// page's upload).
var stillName = regexp.MustCompile(`^[0-9]{1,16}-(pc|phone|page)-[a-z_]{1,32}\.(jpg|wav)$`)

// ValidStill reports whether name is an evidence frame's file name.
func ValidStill(name string) bool { return stillName.MatchString(name) }

// noteOf is what a face signal says of itself: the covered part or the
// head's angle.
func noteOf(detail map[string]any) string {
	if part, _ := detail["part"].(string); part != "" {
		return clean(part, 16)
	}
	if a, ok := detail["angle"].(float64); ok {
		return strconv.Itoa(int(a)) + "°"
	}
	return ""
}

// stillOf is the evidence frame named in a signal's detail, if well formed.
func stillOf(detail map[string]any) string {
	if name, _ := detail["still"].(string); ValidStill(name) {
		return name
	}
	return ""
}

// compareFaces returns "start" or "end" when the page's and the server's
// face checks of the PC camera begin or stop disagreeing (about no face or
// several), "" when nothing changed. The rules' threshold judges how long
// a disagreement must last; a page that is not connected is not compared.
// Call with st.mu held.
func (st *attemptState) compareFaces() Phase {
	differ := false
	if st.pageFaces && st.connected {
		for _, k := range []string{FaceAbsent, FacesMultiple} {
			differ = differ || st.rules.Open(k, pageFaceStream) != st.rules.Open(k, pcFaceStream)
		}
	}
	if differ == st.disagree {
		return ""
	}
	st.disagree = differ
	if differ {
		return Start
	}
	return End
}

func copyFlag(f *FlagState) FlagState {
	c := *f
	c.Timeline = append([]Occurrence(nil), f.Timeline...)
	return c
}

// tick flags conditions that have lasted past their thresholds.
func (s *Service) tick(ctx context.Context) {
	s.mu.Lock()
	states := make([]*attemptState, 0, len(s.attempts))
	for _, st := range s.attempts {
		states = append(states, st)
	}
	s.mu.Unlock()
	now := s.now()
	for _, st := range states {
		st.mu.Lock()
		if len(st.rules.open) == 0 {
			st.mu.Unlock()
			continue
		}
		fs := st.rules.Tick(now)
		st.mu.Unlock()
		// Two streams of one kind crossing the threshold in one tick raise
		// one flag: it is written once.
		saved := map[*FlagState]bool{}
		for _, f := range fs {
			if saved[f] {
				continue
			}
			saved[f] = true
			if err := s.saveFlag(ctx, st, f, time.Now()); err != nil {
				s.log.Warn("save flag", "attempt", st.info.AttemptID, "err", err)
			}
		}
	}
}

// FlagView is a flag as consoles and reviewers see it.
type FlagView struct {
	ID         int64           `json:"id"`
	AttemptID  int64           `json:"attempt_id"`
	Kind       string          `json:"kind"`
	Severity   string          `json:"severity"`
	Count      int             `json:"count"`
	FirstAt    time.Time       `json:"first_at"`
	LastAt     time.Time       `json:"last_at"`
	DurationMs int64           `json:"duration_ms"`
	Reason     i18n.Text       `json:"reason"`
	Status     string          `json:"status"`
	Note       string          `json:"note"`
	DecidedBy  *int64          `json:"decided_by,omitempty"`
	DecidedAt  *time.Time      `json:"decided_at,omitempty"`
	Evidence   json.RawMessage `json:"evidence,omitempty"`
}

func viewOf(f *store.Flag) FlagView {
	return FlagView{ID: f.ID, AttemptID: f.AttemptID, Kind: f.Kind, Severity: f.Severity, Count: f.Count, FirstAt: f.FirstAt, LastAt: f.LastAt,
		DurationMs: f.DurationMs, Reason: i18n.Text{Zh: f.ReasonZh, En: f.ReasonEn}, Status: f.Status, Note: f.Note,
		DecidedBy: f.DecidedBy, DecidedAt: f.DecidedAt, Evidence: json.RawMessage(f.Evidence)}
}

// FlagEvent is a new or updated flag on the bus.
type FlagEvent struct {
	Flag          FlagView  `json:"flag"`
	RoomID        int64     `json:"room_id"`
	InvigilatorID *int64    `json:"invigilator_id"`
	SessionID     int64     `json:"session_id"`
	Received      time.Time `json:"received"`
	New           bool      `json:"new"`
}

// reason words a flag for people.
func reason(f FlagState) i18n.Text {
	return i18n.T("flag."+f.Kind, "seconds", strconv.Itoa(int(f.Longest.Round(time.Second)/time.Second)), "count", strconv.Itoa(f.Count))
}

// saveFlag stores a new or updated flag and tells the consoles and the
// candidate. Saves of an attempt's flags take turns, and each writes the
// flag as it is when its turn comes: a flag two sources raised at once is
// created once, then updated, and never overwritten by an older copy.
func (s *Service) saveFlag(ctx context.Context, st *attemptState, live *FlagState, received time.Time) error {
	st.saving.Lock()
	defer st.saving.Unlock()
	st.mu.Lock()
	f := copyFlag(live)
	st.mu.Unlock()
	ev, _ := json.Marshal(f.Timeline)
	r := reason(f)
	row := &store.Flag{ID: f.ID, AttemptID: st.info.AttemptID, Kind: f.Kind, Severity: string(f.Severity), Count: f.Count, FirstAt: f.FirstAt,
		LastAt: f.LastAt, DurationMs: f.Longest.Milliseconds(), ReasonZh: r.Zh, ReasonEn: r.En, Evidence: string(ev), Status: "open"}
	isNew := f.ID == 0
	if isNew {
		if err := s.db.WithContext(ctx).Create(row).Error; err != nil {
			return err
		}
		st.mu.Lock()
		live.ID = row.ID
		st.mu.Unlock()
	} else {
		err := s.db.WithContext(ctx).Model(&store.Flag{}).Where("id = ?", f.ID).Updates(map[string]any{
			"severity": row.Severity, "count": row.Count, "last_at": row.LastAt, "duration_ms": row.DurationMs,
			"reason_zh": row.ReasonZh, "reason_en": row.ReasonEn, "evidence": row.Evidence}).Error
		if err != nil {
			return err
		}
		if err := s.db.WithContext(ctx).Take(row, f.ID).Error; err != nil {
			return err
		}
	}
	s.publish(FlagTopic, FlagEvent{Flag: viewOf(row), RoomID: st.info.RoomID, InvigilatorID: st.info.InvigilatorID,
		SessionID: st.info.SessionID, Received: received, New: isNew})
	// Nothing is secret from the person being watched.
	s.publish(CandidateTopic, CandidateMsg{AttemptID: st.info.AttemptID, Payload: map[string]any{
		"type": "notice", "kind": f.Kind, "severity": f.Severity,
		"message": i18n.T("notice.flag", "reason_zh", r.Zh, "reason_en", r.En)}})
	return nil
}

// CandidateMsg is a message for one candidate's page.
type CandidateMsg struct {
	AttemptID int64 `json:"attempt_id"`
	Payload   any   `json:"payload"`
}

// Activity is presence or an acknowledgement, for the consoles.
type Activity struct {
	Type      string    `json:"type"`
	AttemptID int64     `json:"attempt_id"`
	Connected bool      `json:"connected,omitempty"`
	MessageID int64     `json:"message_id,omitempty"`
	At        time.Time `json:"at"`
}

func (s *Service) publish(topic string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("marshal", "topic", topic, "err", err)
		return
	}
	if err := s.bus.Publish(context.Background(), topic, b); err != nil {
		s.log.Warn("publish", "topic", topic, "err", err)
	}
}

// Connected reports whether the attempt's PC socket was last seen up.
func (s *Service) Connected(attemptID int64) bool {
	s.mu.Lock()
	st := s.attempts[attemptID]
	s.mu.Unlock()
	if st == nil {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.connected
}

// Flags lists an attempt's flags, newest first.
func (s *Service) Flags(ctx context.Context, attemptID int64) ([]FlagView, error) {
	var rows []store.Flag
	if err := s.db.WithContext(ctx).Where("attempt_id = ?", attemptID).Order("id DESC").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]FlagView, len(rows))
	for i := range rows {
		out[i] = viewOf(&rows[i])
	}
	return out, nil
}

// clean trims a free-text field and bounds its length.
func clean(s string, max int) string {
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > max {
		s = string(r[:max])
	}
	return s
}

// ExamRules are the rules in force for an exam (defaults with its overrides).
func (s *Service) ExamRules(ctx context.Context, examID int64) (Rules, error) {
	return s.examRules(ctx, examID)
}

// SetExamRules stores an exam's rule overrides (JSON by signal kind), after
// checking them; attempts already being watched keep the rules they started with.
func (s *Service) SetExamRules(ctx context.Context, actor, examID int64, overrides string) error {
	if _, err := ParseRules(overrides); err != nil {
		return fmt.Errorf("%w: %v", ErrBadAction, err)
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&store.Exam{}).Where("id = ?", examID).Update("proctor_rules", overrides)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return store.ErrNotFound
		}
		return s.audit(tx, actor, "proctor_rules_set", "exam", examID, json.RawMessage(overrides))
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.rules, examID)
	s.mu.Unlock()
	return nil
}
