package exam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// Attempt states.
const (
	StatusNotStarted    = "not_started"
	StatusInProgress    = "in_progress"
	StatusSubmitted     = "submitted"
	StatusAutoSubmitted = "auto_submitted"
	StatusTerminated    = "terminated"
)

// Attempt kinds.
const (
	KindFormal = "formal"
	KindMock   = "mock"
)

// Config configures the engine.
type Config struct {
	DB     *store.DB
	Bus    store.Bus
	Logger *slog.Logger
	// Now is the server clock (default time.Now); tests move it.
	Now func() time.Time
	// MaxBatch is the most answers committed in one transaction (default 64).
	MaxBatch int
	// SweepEvery is how often overdue attempts are looked for (default 1 s).
	SweepEvery time.Duration
	// RemindEvery is how often reminders before sessions are queued
	// (default 1 min).
	RemindEvery time.Duration
	// Node, in a cluster, says when a room came to this node from an
	// owner that fell silent: that outage is credited to its attempts.
	Node *store.Node
}

// Engine runs attempts: it owns their clock and their durable answers.
type Engine struct {
	cfg Config
	db  *store.DB
	log *slog.Logger
	w   *writer

	mu    sync.Mutex
	live  map[int64]*live
	exams map[int64]*examInfo
}

// examInfo is what the engine keeps of an exam: its blueprint and questions.
type examInfo struct {
	exam      store.Exam
	policy    Policy
	blueprint *Blueprint
	questions map[int64]store.Question
	keys      map[int64][]int
}

// live is an attempt that has a connection on this node.
type live struct {
	mu       sync.Mutex
	id       int64
	status   string
	deadline time.Time
	examID   int64
	grace    time.Duration
	items    map[int64]itemInfo
	peer     Peer
	// lostAt is when the server saw the last PC connection go, for credit.
	lostAt time.Time
	// attached: a PC connection has come to this node for the attempt.
	attached bool
	// changed is closed and replaced when the deadline or status changes,
	// so the connection's clock re-plans its warnings.
	changed chan struct{}
	// room is the attempt's room in a cluster ("" without one): the
	// sockets' writes carry the fencing number of this node's lease of it.
	room string
}

type itemInfo struct {
	kind Kind
	n    int
}

// Peer is a connected device the engine can push messages to.
type Peer interface {
	Send(v any) error
	Close(code, reason string)
}

// New returns an engine; call Run to start its writer and sweeper.
func New(cfg Config) *Engine {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 64
	}
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = time.Second
	}
	if cfg.RemindEvery == 0 {
		cfg.RemindEvery = time.Minute
	}
	e := &Engine{cfg: cfg, db: cfg.DB, log: cfg.Logger, w: newWriter(cfg.DB, cfg.Logger, cfg.MaxBatch),
		live: map[int64]*live{}, exams: map[int64]*examInfo{}}
	if cfg.Node != nil {
		cfg.Node.OnLost(e.forgetRoom)
	}
	return e
}

func (e *Engine) now() time.Time { return e.cfg.Now().UTC().Truncate(time.Microsecond) }

// Run commits answers and submits overdue attempts until ctx ends; then it
// commits what is queued and returns. At start it submits every attempt that
// became overdue while the server was down. It also queues the reminders
// before sessions.
func (e *Engine) Run(ctx context.Context) {
	go e.w.run()
	go e.remind(ctx)
	t := time.NewTicker(e.cfg.SweepEvery)
	defer t.Stop()
	for {
		if n, err := e.SweepOverdue(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("auto-submit sweep failed", "err", err)
		} else if n > 0 {
			e.log.Info("auto-submitted overdue attempts", "count", n)
		}
		select {
		case <-ctx.Done():
			e.w.stop()
			return
		case <-t.C:
		}
	}
}

// remind queues the reminders due, every RemindEvery until ctx ends.
func (e *Engine) remind(ctx context.Context) {
	t := time.NewTicker(e.cfg.RemindEvery)
	defer t.Stop()
	for {
		if n, err := e.QueueReminders(ctx, e.now()); err != nil && ctx.Err() == nil {
			e.log.Error("queueing reminders failed", "err", err)
		} else if n > 0 {
			e.log.Info("reminders queued", "messages", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// exam loads an exam with its bank once.
func (e *Engine) exam(ctx context.Context, id int64) (*examInfo, error) {
	e.mu.Lock()
	info := e.exams[id]
	e.mu.Unlock()
	if info != nil {
		return info, nil
	}
	info = &examInfo{questions: map[int64]store.Question{}, keys: map[int64][]int{}}
	if err := e.db.WithContext(ctx).Take(&info.exam, id).Error; err != nil {
		return nil, err
	}
	bp, err := ParseBlueprint(info.exam.Blueprint)
	if err != nil {
		return nil, err
	}
	info.blueprint = bp
	if info.policy, err = ParsePolicy(info.exam.Policy); err != nil {
		return nil, err
	}
	var qs []store.Question
	if err := e.db.WithContext(ctx).Where("programme_id = ?", info.exam.ProgrammeID).Find(&qs).Error; err != nil {
		return nil, err
	}
	for _, q := range qs {
		info.questions[q.ID] = q
		var key []int
		json.Unmarshal([]byte(q.Answer), &key)
		info.keys[q.ID] = key
	}
	e.mu.Lock()
	e.exams[id] = info
	e.mu.Unlock()
	return info, nil
}

// forgetExam drops a cached exam after its bank changed.
func (e *Engine) forgetExam(id int64) {
	e.mu.Lock()
	delete(e.exams, id)
	e.mu.Unlock()
}

// Handle is a candidate's open attempt on this node.
type Handle struct {
	l           *live
	candidateID int64
}

// Open finds the candidate's attempt and keeps it live on this node. Another
// candidate's attempt is ErrNoAttempt, as is one that does not exist.
func (e *Engine) Open(ctx context.Context, candidateID, attemptID int64) (*Handle, error) {
	var a store.Attempt
	err := e.db.WithContext(ctx).Where("id = ? AND candidate_id = ?", attemptID, candidateID).Take(&a).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNoAttempt
	}
	if err != nil {
		return nil, err
	}
	info, err := e.exam(ctx, a.ExamID)
	if err != nil {
		return nil, err
	}
	// Its room is read once, when the attempt first goes live here (a
	// reconnect finds it live).
	e.mu.Lock()
	known := e.live[a.ID] != nil
	e.mu.Unlock()
	room := ""
	if e.cfg.Node != nil && !known {
		if room, err = e.Room(ctx, 0, a.ID); err != nil {
			return nil, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.live[a.ID]
	if l == nil && e.cfg.Node != nil && known {
		// Forgotten meanwhile (its room moved away): read again.
		e.mu.Unlock()
		defer e.mu.Lock() // for the deferred Unlock above
		return e.Open(ctx, candidateID, attemptID)
	}
	if l == nil {
		var p Paper
		if err := json.Unmarshal([]byte(a.Paper), &p); err != nil {
			return nil, fmt.Errorf("attempt %d paper: %w", a.ID, err)
		}
		l = &live{id: a.ID, status: a.Status, examID: a.ExamID, grace: info.policy.grace(), items: map[int64]itemInfo{}, changed: make(chan struct{}), room: room}
		if a.Deadline != nil {
			l.deadline = a.Deadline.UTC()
		}
		for _, it := range p.Items {
			l.items[it.QuestionID] = itemInfo{Kind(info.questions[it.QuestionID].Kind), len(it.Perm)}
		}
		e.live[a.ID] = l
	}
	return &Handle{l: l, candidateID: candidateID}, nil
}

// fence stamps o with this node's lease of the attempt's room; the writer
// refuses it if a newer owner has written for the room since. A node that
// no longer holds the room writes nothing for it.
func (e *Engine) fence(l *live, o *op) error {
	if e.cfg.Node == nil || l.room == "" {
		return nil
	}
	lease, ok := e.cfg.Node.Holds(l.room)
	if !ok {
		return store.ErrNotOwner
	}
	o.room, o.fence = l.room, lease.Fence
	return nil
}

// enqueueFenced hands the writer an op of a socket of l's room.
func (e *Engine) enqueueFenced(l *live, o *op) error {
	if err := e.fence(l, o); err != nil {
		return err
	}
	return e.w.enqueue(o)
}

// forgetRoom drops what the engine keeps of a room's attempts when this node
// loses the room: if the room comes back, they are read again from the
// database, where its other owners wrote.
func (e *Engine) forgetRoom(room string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, l := range e.live {
		if l.room == room {
			delete(e.live, id)
		}
	}
}

// setState updates a live attempt after a committed change and wakes its clock.
func (l *live) setState(status string, deadline time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status = status
	if !deadline.IsZero() {
		l.deadline = deadline
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *live) snapshot() (status string, deadline time.Time, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status, l.deadline, l.changed
}

// Answer stores an answer and calls done once it is durable (nil) or
// refused. It does not block: the caller acknowledges from done.
func (e *Engine) Answer(h *Handle, seq, question int64, value []int, done func(error)) {
	if err := e.checkClientOp(h, seq, question); err != nil {
		done(err)
		return
	}
	if value == nil {
		value = []int{}
	}
	if err := checkValue(h.l.items[question].kind, h.l.items[question].n, value); err != nil {
		done(err)
		return
	}
	o := &op{attemptID: h.l.id, at: e.now(), kind: EvAnswer, clientSeq: seq, requireOpen: true, question: question,
		value: mustJSON(value), data: mustJSON(answerData{question, value}), done: done}
	if err := e.enqueueFenced(h.l, o); err != nil {
		done(err)
	}
}

// Mark flags a question for review (or clears the flag), like Answer.
func (e *Engine) Mark(h *Handle, seq, question int64, marked bool, done func(error)) {
	if err := e.checkClientOp(h, seq, question); err != nil {
		done(err)
		return
	}
	o := &op{attemptID: h.l.id, at: e.now(), kind: EvMark, clientSeq: seq, requireOpen: true, question: question,
		marked: marked, data: mustJSON(markData{question, marked}), done: done}
	if err := e.enqueueFenced(h.l, o); err != nil {
		done(err)
	}
}

func (e *Engine) checkClientOp(h *Handle, seq, question int64) error {
	if seq <= 0 || seq > MaxSeq {
		return ErrBadSeq
	}
	// The attempt's state is judged before the question: before the start
	// every question id gets not_started, so guessing ids tells nothing of
	// the paper.
	status, deadline, _ := h.l.snapshot()
	switch {
	case status == StatusNotStarted:
		return ErrNotStarted
	case status != StatusInProgress:
		return ErrEnded
	case e.now().After(deadline.Add(h.l.grace)):
		return ErrLate
	}
	if _, ok := h.l.items[question]; !ok {
		return ErrUnknownQuestion
	}
	return nil
}

// Start starts a not-yet-started attempt: its deadline is fixed now, at
// start + the exam's duration, capped by the session's end.
func (e *Engine) Start(ctx context.Context, h *Handle) error {
	var a store.Attempt
	if err := e.db.WithContext(ctx).Take(&a, h.l.id).Error; err != nil {
		return err
	}
	if a.Status != StatusNotStarted {
		return nil // already started (or over): starting is idempotent
	}
	info, err := e.exam(ctx, a.ExamID)
	if err != nil {
		return err
	}
	now := e.now()
	deadline := now.Add(time.Duration(info.exam.DurationMinutes) * time.Minute)
	if a.SessionID != nil {
		var s store.ExamSession
		if err := e.db.WithContext(ctx).Take(&s, *a.SessionID).Error; err != nil {
			return err
		}
		switch {
		case now.Before(s.StartsAt):
			return ErrSessionNotOpen
		case now.After(s.AdmissionEndsAt) || !now.Before(s.EndsAt):
			return ErrAdmissionClosed
		}
		if s.EndsAt.Before(deadline) {
			deadline = s.EndsAt.UTC()
		}
		r, err := e.ReadinessOf(ctx, a.ID)
		if err != nil {
			return err
		}
		switch r.State(s.AdmissionMode) {
		case StateRefused:
			return fmt.Errorf("%w: %s", ErrRefused, r.Refused)
		case StateNotReady, StateReady:
			return ErrNotAdmitted
		}
	}
	o := &op{attemptID: h.l.id, at: now, kind: EvStart, data: mustJSON(timeData{Deadline: deadline}), refuse: ErrEnded,
		apply: func(tx *gorm.DB, st *rowState) (bool, error) {
			res := tx.Model(&store.Attempt{}).Where("id = ? AND status = ?", st.ID, StatusNotStarted).
				Updates(map[string]any{"status": StatusInProgress, "started_at": now, "deadline": deadline})
			if res.Error != nil || res.RowsAffected == 0 {
				return false, res.Error
			}
			st.Status, st.Deadline = StatusInProgress, &deadline
			return true, nil
		}}
	if err := e.fence(h.l, o); err != nil {
		return err
	}
	if err := e.w.do(ctx, o); err != nil {
		if errors.Is(err, ErrEnded) {
			return nil // a concurrent start won
		}
		return err
	}
	h.l.setState(StatusInProgress, deadline)
	return nil
}

// Submit ends the attempt at the candidate's request and grades it.
func (e *Engine) Submit(ctx context.Context, h *Handle) error {
	return e.end(ctx, h.l, h.l.id, StatusSubmitted, "candidate submitted")
}

// Terminate ends an attempt for cheating; the reason is shown to the candidate.
func (e *Engine) Terminate(ctx context.Context, attemptID int64, reason string) error {
	return e.end(ctx, nil, attemptID, StatusTerminated, reason)
}

// end moves an in-progress attempt to a final state exactly once, even with
// several nodes sweeping: the update is conditional on the state, in the same
// transaction as the grading and the log entry. A candidate's own request
// (by, their live attempt) is fenced like their answers.
func (e *Engine) end(ctx context.Context, by *live, attemptID int64, status, reason string) error {
	var a store.Attempt
	if err := e.db.WithContext(ctx).Take(&a, attemptID).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrNoAttempt
		}
		return err
	}
	info, err := e.exam(ctx, a.ExamID)
	if err != nil {
		return err
	}
	now := e.now()
	var score float64
	var passed bool
	o := &op{attemptID: attemptID, at: now, kind: EvEnd, refuse: ErrEnded, readsAnswers: true}
	o.apply = func(tx *gorm.DB, st *rowState) (bool, error) {
		if st.Status == StatusNotStarted && status != StatusTerminated {
			o.refuse = ErrNotStarted
			return false, nil
		}
		res := tx.Model(&store.Attempt{}).Where("id = ? AND status IN ?", attemptID, []string{StatusInProgress, StatusNotStarted}).
			Updates(map[string]any{"status": status, "ended_at": now, "end_reason": reason})
		if res.Error != nil || res.RowsAffected == 0 {
			return false, res.Error
		}
		st.Status = status
		var err error
		if score, passed, err = grade(tx, info, &a); err != nil {
			return false, err
		}
		if status == StatusTerminated {
			passed = false
		}
		if err := tx.Model(&store.Attempt{}).Where("id = ?", attemptID).Updates(map[string]any{"score": score, "passed": passed}).Error; err != nil {
			return false, err
		}
		o.data = mustJSON(endData{Status: status, Reason: reason, Score: &score})
		return true, nil
	}
	if by != nil {
		if err := e.fence(by, o); err != nil {
			return err
		}
	}
	if err := e.w.do(ctx, o); err != nil {
		return err
	}
	e.mu.Lock()
	l := e.live[attemptID]
	e.mu.Unlock()
	if l != nil {
		l.setState(status, time.Time{})
		l.mu.Lock()
		p := l.peer
		l.mu.Unlock()
		if p != nil {
			end := Ended{Type: "ended", Status: status, Reason: reason, Kind: a.Kind}
			if a.Kind == KindMock {
				// A formal result is released after review, never here.
				end.Score, end.Passed = &score, &passed
			}
			p.Send(end)
		}
	}
	e.log.Info("attempt ended", "attempt", attemptID, "status", status, "score", score)
	return nil
}

// Ended tells a device its attempt is over; only a mock's carries its
// score and result.
type Ended struct {
	Type   string   `json:"type"`
	Status string   `json:"status"`
	Reason string   `json:"reason"`
	Score  *float64 `json:"score,omitempty"`
	Passed *bool    `json:"passed,omitempty"`
	Kind   string   `json:"kind"`
}

// grade scores an attempt's answers against the keys, storing each
// question's points, inside the ending transaction.
func grade(tx *gorm.DB, info *examInfo, a *store.Attempt) (float64, bool, error) {
	var p Paper
	if err := json.Unmarshal([]byte(a.Paper), &p); err != nil {
		return 0, false, err
	}
	var answers []store.Answer
	if err := tx.Where("attempt_id = ?", a.ID).Find(&answers).Error; err != nil {
		return 0, false, err
	}
	chosen := map[int64][]int{}
	for _, an := range answers {
		var v []int
		json.Unmarshal([]byte(an.Value), &v)
		chosen[an.QuestionID] = v
	}
	total := 0.0
	for _, it := range p.Items {
		q := info.questions[it.QuestionID]
		pts := Score(Kind(q.Kind), info.keys[q.ID], chosen[q.ID], it.Points, q.PartialCredit)
		total += pts
		if _, ok := chosen[q.ID]; ok {
			if err := tx.Model(&store.Answer{}).Where("attempt_id = ? AND question_id = ?", a.ID, q.ID).Update("points", pts).Error; err != nil {
				return 0, false, err
			}
		}
	}
	total = round2(total)
	return total, store.Passes(total, info.exam.PassMark), nil
}

// SweepOverdue auto-submits every attempt whose deadline (plus its exam's
// grace) has passed, connected or not. It returns how many it ended.
func (e *Engine) SweepOverdue(ctx context.Context) (int, error) {
	var due []struct {
		ID       int64
		ExamID   int64
		Deadline time.Time
	}
	now := e.now()
	err := e.db.WithContext(ctx).Model(&store.Attempt{}).Select("id, exam_id, deadline").Where("status = ? AND deadline < ?", StatusInProgress, now).
		Order("deadline").Limit(500).Scan(&due).Error
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range due {
		info, err := e.exam(ctx, a.ExamID)
		if err != nil {
			return n, err
		}
		if now.Before(a.Deadline.Add(info.policy.grace())) {
			continue
		}
		err = e.end(ctx, nil, a.ID, StatusAutoSubmitted, "time is up")
		switch {
		case err == nil:
			n++
		case errors.Is(err, ErrEnded): // another node or the candidate was first
		default:
			return n, err
		}
	}
	return n, nil
}

// newSeed gives a paper its random seed.
func newSeed() int64 { return rand.Int64() }
