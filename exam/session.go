package exam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

func (e *Engine) signal(attemptID int64, kind, phase string) {
	if e.cfg.Bus == nil {
		return
	}
	if err := store.PublishSignal(context.Background(), e.cfg.Bus, store.SignalMessage{AttemptID: attemptID, Source: "server", Kind: kind, Phase: phase}); err != nil {
		e.log.Warn("publish signal", "attempt", attemptID, "kind", kind, "err", err)
	}
}

// logEvent appends a connection event to the attempt's log without waiting.
func (e *Engine) logEvent(l *live, kind string, data any) {
	attemptID := l.id
	o := &op{attemptID: attemptID, at: e.now(), kind: kind, data: mustJSON(data), done: func(err error) {
		if err != nil {
			e.log.Warn("attempt log", "attempt", attemptID, "kind", kind, "err", err)
		}
	}}
	if err := e.fence(l, o); err != nil {
		e.log.Info("attempt log not written: the room moved", "attempt", attemptID, "kind", kind)
		return
	}
	if err := e.w.enqueue(o); err != nil {
		e.log.Warn("attempt log", "attempt", attemptID, "kind", kind, "err", err)
	}
}

type connData struct {
	Device string `json:"device"`
	Conn   string `json:"conn"`
}

// Attach makes peer the attempt's PC connection. A connection already there
// is taken over: it is told why and closed, and the takeover is logged and
// signalled to the proctor. Time the server saw the attempt without a
// connection is credited back, within the exam's cap.
func (e *Engine) Attach(ctx context.Context, h *Handle, peer Peer, connID string) {
	l := h.l
	l.mu.Lock()
	old := l.peer
	l.peer = peer
	lostAt := l.lostAt
	l.lostAt = time.Time{}
	first := !l.attached
	l.attached = true
	l.mu.Unlock()
	if first && old == nil {
		// The first connection on this node: if the room came here from
		// an owner that fell silent, the page was cut off since then.
		lostAt = e.handedOver(ctx, l.id)
	}
	if old != nil {
		if samePage(old, peer) {
			// The same page reconnected before the server noticed its
			// old connection die: a network drop, not a second login.
			old.Close("replaced", "")
			lostAt = lastSeen(old, e.now())
			e.logEvent(l, EvDisconnect, connData{"pc", "replaced"})
			e.signal(l.id, "connection_lost", "start")
		} else {
			old.Close("takeover", "")
			e.logEvent(l, EvTakeover, connData{"pc", connID})
			e.signal(l.id, "second_login", "instant")
		}
	}
	e.logEvent(l, EvConnect, connData{"pc", connID})
	e.signal(l.id, "connected", "instant")
	if !lostAt.IsZero() {
		e.signal(l.id, "connection_lost", "end")
	}
	if !lostAt.IsZero() {
		if err := e.credit(ctx, h, e.now().Sub(lostAt)); err != nil {
			e.log.Warn("time credit", "attempt", l.id, "err", err)
		}
	}
}

// handedOver is when the attempt's room lost its former owner, if the
// room came to this node because that owner fell silent; zero otherwise.
func (e *Engine) handedOver(ctx context.Context, attemptID int64) time.Time {
	if e.cfg.Node == nil {
		return time.Time{}
	}
	room, err := e.Room(ctx, 0, attemptID)
	if err != nil {
		return time.Time{}
	}
	if l, ok := e.cfg.Node.Holds(room); ok && l.Since != 0 {
		return time.UnixMilli(l.Since)
	}
	return time.Time{}
}

// samePage says whether two connections come from the same page (the page
// token they were opened with).
func samePage(a, b Peer) bool {
	ca, ok1 := a.(Conn)
	cb, ok2 := b.(Conn)
	if !ok1 || !ok2 {
		return false
	}
	pa, _ := ca.Value(pageKey{}).(string)
	pb, _ := cb.Value(pageKey{}).(string)
	return pa != "" && pa == pb
}

// lastSeen is when a connection last said anything (the outage began
// then, not when the server noticed), or now if it cannot tell.
func lastSeen(p Peer, now time.Time) time.Time {
	if s, ok := p.(interface{ LastSeen() time.Time }); ok {
		if t := s.LastSeen(); t.After(now.Add(-24*time.Hour)) && !t.After(now) {
			return t
		}
	}
	return now
}

// Detach forgets peer when its connection goes.
func (e *Engine) Detach(h *Handle, peer Peer, connID string) {
	l := h.l
	l.mu.Lock()
	mine := l.peer == peer
	if mine {
		l.peer = nil
		l.lostAt = lastSeen(peer, e.now())
	}
	status := l.status
	l.mu.Unlock()
	if mine {
		e.logEvent(l, EvDisconnect, connData{"pc", connID})
		if status == StatusInProgress {
			e.signal(l.id, "connection_lost", "start")
		}
	}
}

// credit gives back outage time, up to the exam's cap, never past the
// session's end.
func (e *Engine) credit(ctx context.Context, h *Handle, gap time.Duration) error {
	var a store.Attempt
	if err := e.db.WithContext(ctx).Take(&a, h.l.id).Error; err != nil {
		return err
	}
	info, err := e.exam(ctx, a.ExamID)
	if err != nil {
		return err
	}
	p := info.policy
	if p.creditCap() <= 0 || gap < p.minOutage() {
		return nil
	}
	if a.Status != StatusInProgress || a.Deadline == nil || e.now().After(a.Deadline.Add(p.grace())) {
		return nil
	}
	if a.StartedAt != nil {
		gap = min(gap, e.now().Sub(*a.StartedAt)) // never time before the start
	}
	left := p.creditCap() - time.Duration(a.CreditedSeconds)*time.Second
	secs := int(min(gap, left) / time.Second)
	deadline := a.Deadline.Add(time.Duration(secs) * time.Second).UTC()
	if a.SessionID != nil {
		var s store.ExamSession
		if err := e.db.WithContext(ctx).Take(&s, *a.SessionID).Error; err != nil {
			return err
		}
		if s.EndsAt.Before(deadline) {
			deadline = s.EndsAt.UTC()
			secs = int(deadline.Sub(*a.Deadline) / time.Second)
		}
	}
	if secs <= 0 {
		return nil
	}
	o := &op{attemptID: a.ID, at: e.now(), kind: EvCredit, data: mustJSON(timeData{Deadline: deadline, Seconds: secs}), refuse: ErrEnded,
		apply: func(tx *gorm.DB, st *rowState) (bool, error) {
			res := tx.Model(&store.Attempt{}).Where("id = ? AND status = ? AND credited_seconds = ?", a.ID, StatusInProgress, a.CreditedSeconds).
				Updates(map[string]any{"deadline": deadline, "credited_seconds": a.CreditedSeconds + secs})
			return res.RowsAffected == 1, res.Error
		}}
	if err := e.fence(h.l, o); err != nil {
		return err
	}
	if err := e.w.do(ctx, o); err != nil {
		return err
	}
	h.l.setState(StatusInProgress, deadline)
	e.log.Info("outage time credited", "attempt", a.ID, "seconds", secs)
	return nil
}

// Paper is what resume (and start) tell the candidate: the paper once the
// attempt has started, the saved answers, and the clock.
type PaperReply struct {
	Type            string          `json:"type"`
	ID              json.RawMessage `json:"id,omitempty"`
	AttemptID       int64           `json:"attempt_id"`
	Kind            string          `json:"kind"`
	Status          string          `json:"status"`
	TitleZh         string          `json:"title_zh"`
	TitleEn         string          `json:"title_en"`
	DurationMinutes int             `json:"duration_minutes"`
	Sections        []SectionView   `json:"sections"`
	Questions       []QuestionView  `json:"questions"`
	Answers         []AnswerView    `json:"answers"`
	LastSeq         int64           `json:"last_seq"`
	StartedAt       *time.Time      `json:"started_at"`
	Deadline        *time.Time      `json:"deadline"`
	ServerNow       time.Time       `json:"server_now"`
	OpensAt         *time.Time      `json:"opens_at,omitempty"`
	AdmissionEndsAt *time.Time      `json:"admission_ends_at,omitempty"`
	EndReason       string          `json:"end_reason,omitempty"`
	Score           *float64        `json:"score,omitempty"`
}

// AnswerView is a saved answer.
type AnswerView struct {
	Q      int64 `json:"q"`
	V      []int `json:"v"`
	Seq    int64 `json:"seq"`
	Marked bool  `json:"marked"`
}

// Resume returns the attempt as the server has it. The questions are sent
// only once the attempt has started; the key never.
func (e *Engine) Resume(ctx context.Context, h *Handle) (*PaperReply, error) {
	var a store.Attempt
	if err := e.db.WithContext(ctx).Take(&a, h.l.id).Error; err != nil {
		return nil, err
	}
	info, err := e.exam(ctx, a.ExamID)
	if err != nil {
		return nil, err
	}
	r := &PaperReply{Type: "paper", AttemptID: a.ID, Kind: a.Kind, Status: a.Status, TitleZh: info.exam.TitleZh, TitleEn: info.exam.TitleEn,
		DurationMinutes: info.exam.DurationMinutes, StartedAt: a.StartedAt, Deadline: a.Deadline, EndReason: a.EndReason,
		Sections: []SectionView{}, Questions: []QuestionView{}, Answers: []AnswerView{}}
	if a.Kind == KindMock {
		r.Score = a.Score
	}
	if a.SessionID != nil {
		var s store.ExamSession
		if err := e.db.WithContext(ctx).Take(&s, *a.SessionID).Error; err != nil {
			return nil, err
		}
		r.OpensAt, r.AdmissionEndsAt = &s.StartsAt, &s.AdmissionEndsAt
	}
	if a.Status != StatusNotStarted {
		var p Paper
		if err := json.Unmarshal([]byte(a.Paper), &p); err != nil {
			return nil, err
		}
		r.Sections, r.Questions = p.View(info.blueprint, info.questions)
		var answers []store.Answer
		if err := e.db.WithContext(ctx).Where("attempt_id = ?", a.ID).Find(&answers).Error; err != nil {
			return nil, err
		}
		for _, an := range answers {
			v := []int{}
			json.Unmarshal([]byte(an.Value), &v)
			r.Answers = append(r.Answers, AnswerView{an.QuestionID, v, an.Seq, an.Marked})
		}
	}
	err = e.db.WithContext(ctx).Model(&store.AttemptEvent{}).Where("attempt_id = ?", a.ID).
		Select("COALESCE(MAX(client_seq), 0)").Scan(&r.LastSeq).Error
	if err != nil {
		return nil, err
	}
	r.ServerNow = e.now()
	return r, nil
}

// MocksPerDay is how many mock tests a candidate may start in 24 hours.
const MocksPerDay = 5

// StartMock creates a new mock attempt (模拟测试) for a candidate: the same
// engine on a paper from the practice pool, never counted; at most
// MocksPerDay in 24 hours, and none while their formal attempt runs.
func (e *Engine) StartMock(ctx context.Context, candidateID int64) (int64, error) {
	var running, recent int64
	if err := e.db.WithContext(ctx).Model(&store.Attempt{}).Where("candidate_id = ? AND kind = ? AND status = ?", candidateID, KindFormal, StatusInProgress).
		Count(&running).Error; err != nil {
		return 0, err
	}
	if running > 0 {
		return 0, ErrFormalRunning
	}
	if err := e.db.WithContext(ctx).Model(&store.Attempt{}).Where("candidate_id = ? AND kind = ? AND created_at > ?", candidateID, KindMock, e.now().Add(-24*time.Hour)).
		Count(&recent).Error; err != nil {
		return 0, err
	}
	if recent >= MocksPerDay {
		return 0, fmt.Errorf("%w: %d in the last 24 hours", ErrMockLimit, recent)
	}
	var ex store.Exam
	err := e.db.WithContext(ctx).Where("kind = ?", KindMock).Order("id").Take(&ex).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return 0, ErrNoAttempt
	}
	if err != nil {
		return 0, err
	}
	info, err := e.exam(ctx, ex.ID)
	if err != nil {
		return 0, err
	}
	seed := newSeed()
	p, err := Draw(info.blueprint, bankOf(info, PoolPractice), seed)
	if err != nil {
		return 0, fmt.Errorf("%w (from the practice pool)", err)
	}
	a := &store.Attempt{ExamID: ex.ID, CandidateID: candidateID, Kind: KindMock, Status: StatusNotStarted, Seed: seed, Paper: string(mustJSON(p)), CreatedAt: e.now()}
	if err := e.db.WithContext(ctx).Create(a).Error; err != nil {
		return 0, err
	}
	return a.ID, nil
}

// bankOf is the exam's bank as far as a pool goes.
func bankOf(info *examInfo, pool string) []store.Question {
	qs := make([]store.Question, 0, len(info.questions))
	for _, q := range info.questions {
		if q.Pool == pool {
			qs = append(qs, q)
		}
	}
	return qs
}

// Schedule draws a paper for every seat of a session that has none, as
// the admin's act (ScheduleSession, in one transaction).
func (e *Engine) Schedule(ctx context.Context, sessionID, adminID int64) (int, error) {
	var n int
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		n, err = ScheduleSession(ctx, tx, sessionID, &adminID)
		return err
	})
	return n, err
}

// ScheduleSession draws a paper for every seat of a session that has none,
// so the start of the exam costs nothing but a state change. It returns how
// many attempts it created.
//
// The drawing is audited as actor's (nil: the system's, as when a
// registration's seat is drawn).
func ScheduleSession(ctx context.Context, tx *gorm.DB, sessionID int64, actor *int64) (int, error) {
	var s store.ExamSession
	if err := tx.WithContext(ctx).Take(&s, sessionID).Error; err != nil {
		return 0, err
	}
	var ex store.Exam
	if err := tx.WithContext(ctx).Take(&ex, s.ExamID).Error; err != nil {
		return 0, err
	}
	bp, err := ParseBlueprint(ex.Blueprint)
	if err != nil {
		return 0, err
	}
	var bank []store.Question
	if err := tx.WithContext(ctx).Where("programme_id = ? AND pool = ?", ex.ProgrammeID, poolOf(ex.Kind)).Find(&bank).Error; err != nil {
		return 0, err
	}
	var seats []store.Seat
	err = tx.WithContext(ctx).Where("session_id = ? AND id NOT IN (SELECT seat_id FROM attempts WHERE seat_id IS NOT NULL)", sessionID).
		Order("id").Find(&seats).Error
	if err != nil {
		return 0, err
	}
	attempts := make([]store.Attempt, 0, len(seats))
	now := time.Now().UTC()
	for _, seat := range seats {
		seed := newSeed()
		p, err := Draw(bp, bank, seed)
		if err != nil {
			return 0, err
		}
		attempts = append(attempts, store.Attempt{ExamID: ex.ID, SessionID: &s.ID, SeatID: &seat.ID, CandidateID: seat.CandidateID,
			Kind: ex.Kind, Status: StatusNotStarted, Seed: seed, Paper: string(mustJSON(p)), CreatedAt: now})
	}
	if len(attempts) == 0 {
		return 0, nil
	}
	if err := tx.WithContext(ctx).CreateInBatches(attempts, 200).Error; err != nil {
		return 0, err
	}
	d, _ := json.Marshal(map[string]int{"papers": len(attempts)})
	return len(attempts), tx.WithContext(ctx).Create(&store.AuditEvent{At: now, ActorID: actor, Action: "session_scheduled", ObjectType: "session",
		ObjectID: itoa(sessionID), Detail: string(d)}).Error
}

// AttemptSummary is one of a candidate's attempts, for their home page.
type AttemptSummary struct {
	ID              int64      `json:"id"`
	Kind            string     `json:"kind"`
	Status          string     `json:"status"`
	TitleZh         string     `json:"title_zh"`
	TitleEn         string     `json:"title_en"`
	DurationMinutes int        `json:"duration_minutes"`
	SessionTitle    string     `json:"session_title,omitempty"`
	Ticket          string     `json:"ticket,omitempty"`
	Room            string     `json:"room,omitempty"`
	OpensAt         *time.Time `json:"opens_at,omitempty"`
	AdmissionEndsAt *time.Time `json:"admission_ends_at,omitempty"`
	EndsAt          *time.Time `json:"ends_at,omitempty"`
	Deadline        *time.Time `json:"deadline,omitempty"`
	Score           *float64   `json:"score,omitempty"`
}

// Attempts lists a candidate's attempts: formal ones first, newest mock
// attempts after. Scores are shown for mock attempts only; formal results
// are released after review.
func (e *Engine) Attempts(ctx context.Context, candidateID int64) ([]AttemptSummary, error) {
	var out []AttemptSummary
	err := e.db.WithContext(ctx).Table("attempts").
		Select(`attempts.id, attempts.kind, attempts.status, exams.title_zh, exams.title_en, exams.duration_minutes,
			COALESCE(exam_sessions.title, '') AS session_title, COALESCE(seats.ticket, '') AS ticket, COALESCE(rooms.name, '') AS room,
			exam_sessions.starts_at AS opens_at, exam_sessions.admission_ends_at, exam_sessions.ends_at, attempts.deadline,
			CASE WHEN attempts.kind = 'mock' THEN attempts.score END AS score`).
		Joins("JOIN exams ON exams.id = attempts.exam_id").
		Joins("LEFT JOIN exam_sessions ON exam_sessions.id = attempts.session_id").
		Joins("LEFT JOIN seats ON seats.id = attempts.seat_id").
		Joins("LEFT JOIN rooms ON rooms.id = seats.room_id").
		Where("attempts.candidate_id = ?", candidateID).
		Order("CASE WHEN attempts.kind = 'formal' THEN 0 ELSE 1 END, attempts.id DESC").Limit(50).
		Scan(&out).Error
	return out, err
}
