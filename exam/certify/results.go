package certify

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

var endedStatuses = []string{exam.StatusSubmitted, exam.StatusAutoSubmitted, exam.StatusTerminated}

// Settle brings a registration up to date: theory results from the exam
// engine (an attempt ruled invalid by review fails), the submission window
// of the practical or review once theory is passed, and the level's result:
// a certificate when every component is passed, the registration closed
// when a retake failed. It returns the certificate, if any.
func (s *Service) Settle(ctx context.Context, regID int64) (*store.Certificate, error) {
	var cert *store.Certificate
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		cert, err = s.settle(ctx, tx, regID)
		return err
	})
	return cert, err
}

func (s *Service) settle(ctx context.Context, tx *gorm.DB, regID int64) (*store.Certificate, error) {
	if err := s.lock(tx, "registrations", regID); err != nil {
		return nil, err
	}
	var reg store.Registration
	if err := tx.Take(&reg, regID).Error; err != nil {
		return nil, err
	}
	if reg.Status != RegOpen {
		return certificateOf(tx, regID)
	}
	lv, err := s.level(ctx, tx, reg.LevelID)
	if err != nil {
		return nil, err
	}
	var sittings []store.Sitting
	if err := tx.Where("registration_id = ?", regID).Order("component, n").Find(&sittings).Error; err != nil {
		return nil, err
	}
	var theoryPassedAt *time.Time
	for i := range sittings {
		st := &sittings[i]
		if st.Component != string(exam.Theory) || st.SeatID == nil {
			continue
		}
		if err := s.theoryResult(tx, st); err != nil {
			return nil, err
		}
		if st.Passed != nil && *st.Passed {
			theoryPassedAt = st.DecidedAt
		}
	}
	var states []string
	for _, c := range regComponents(lv, sittings) {
		var outcomes []Outcome
		for i := range sittings {
			st := &sittings[i]
			if st.Component != string(c) {
				continue
			}
			if c != exam.Theory && st.N == 1 && st.OpenedAt == nil && theoryPassedAt != nil {
				st.OpenedAt = theoryPassedAt
				if err := tx.Model(st).Update("opened_at", theoryPassedAt).Error; err != nil {
					return nil, err
				}
			}
			outcomes = append(outcomes, outcome(st))
		}
		state, left := ComponentState(lv.policy, outcomes)
		states = append(states, state)
		if state == StateRetake {
			if err := s.retakeNotice(ctx, tx, &reg, c, len(outcomes), left); err != nil {
				return nil, err
			}
		}
	}
	now := s.now()
	switch LevelState(states) {
	case StatePassed:
		cert, err := s.issue(tx, &reg, lv, now)
		if err != nil {
			return nil, err
		}
		return cert, tx.Model(&reg).Update("status", RegPassed).Error
	case StateExhausted:
		if err := tx.Model(&reg).Update("status", RegClosed).Error; err != nil {
			return nil, err
		}
		return nil, audit(tx, now, 0, "registration_closed", "registration", reg.ID, map[string]string{"rule": "retakes_used"})
	}
	return nil, nil
}

// regComponents are the components a registration was opened with (one
// sitting each at registration), in the order they are sat; a level's
// components changed since apply to new registrations only.
func regComponents(lv *level, sittings []store.Sitting) []exam.Component {
	var out []exam.Component
	for _, c := range componentOrder {
		if slices.ContainsFunc(sittings, func(st store.Sitting) bool { return st.Component == string(c) }) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return lv.spec.Components
	}
	return out
}

func outcome(st *store.Sitting) Outcome {
	switch {
	case st.Passed == nil:
		return Pending
	case *st.Passed:
		return Pass
	}
	return Fail
}

// theoryResult takes a theory sitting's result from its attempt once the
// attempt has ended and been graded; a review ruling it invalid fails it,
// even after it was first recorded as passed.
func (s *Service) theoryResult(tx *gorm.DB, st *store.Sitting) error {
	var a store.Attempt
	if err := tx.Where("seat_id = ?", *st.SeatID).Take(&a).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil
		}
		return err
	}
	if !slices.Contains(endedStatuses, a.Status) || a.Passed == nil {
		return nil
	}
	pass := *a.Passed
	var rv store.AttemptReview
	invalid := tx.Where("attempt_id = ? AND decision = ?", a.ID, "invalid").Take(&rv).Error == nil
	if invalid {
		pass = false
	}
	if st.Passed != nil && *st.Passed == pass {
		return nil
	}
	at := s.now()
	if a.EndedAt != nil {
		at = *a.EndedAt
	}
	if st.DecidedAt != nil {
		at = *st.DecidedAt
	}
	st.Score, st.Passed, st.DecidedAt = a.Score, &pass, &at
	if err := tx.Model(st).Updates(map[string]any{"score": a.Score, "passed": pass, "decided_at": at}).Error; err != nil {
		return err
	}
	if err := audit(tx, s.now(), 0, "component_result", "sitting", st.ID, map[string]any{"attempt": a.ID, "score": a.Score, "passed": pass, "ruled_invalid": invalid}); err != nil {
		return err
	}
	return s.resultNotice(context.Background(), tx, st)
}

// RequestRetake opens the retake of a failed component: it charges the
// retake fee and adds the sitting. For the candidate (actorID is theirs)
// or an admin acting for them.
func (s *Service) RequestRetake(ctx context.Context, actorID, regID int64, component string, candidateID int64) (*store.Sitting, error) {
	var st *store.Sitting
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := s.settle(ctx, tx, regID); err != nil {
			return err
		}
		var reg store.Registration
		if err := tx.Take(&reg, regID).Error; err != nil {
			return err
		}
		if candidateID != 0 && reg.CandidateID != candidateID {
			return fmt.Errorf("%w: not the candidate's registration", store.ErrNotFound)
		}
		if reg.Status == RegClosed {
			return ErrNoRetake
		}
		lv, err := s.level(ctx, tx, reg.LevelID)
		if err != nil {
			return err
		}
		var sittings []store.Sitting
		if err := tx.Where("registration_id = ? AND component = ?", regID, component).Order("n").Find(&sittings).Error; err != nil {
			return err
		}
		var outcomes []Outcome
		for i := range sittings {
			outcomes = append(outcomes, outcome(&sittings[i]))
		}
		state, _ := ComponentState(lv.policy, outcomes)
		switch {
		case len(sittings) == 0 || reg.Status != RegOpen:
			return ErrRetakeNotNeeded
		case state == StateExhausted:
			return ErrNoRetake
		case state != StateRetake:
			return ErrRetakeNotNeeded
		}
		now := s.now()
		fee := &store.Fee{RegistrationID: regID, Item: ItemRetake, Component: component, AmountCents: Fee(lv.policy, lv.spec, ItemRetake), CreatedAt: now}
		if err := tx.Create(fee).Error; err != nil {
			return err
		}
		st = &store.Sitting{RegistrationID: regID, Component: component, N: len(sittings) + 1, FeeID: &fee.ID, CreatedAt: now}
		if component != string(exam.Theory) {
			st.OpenedAt = &now
		}
		if err := tx.Create(st).Error; err != nil {
			return err
		}
		return audit(tx, now, actorID, "retake_requested", "registration", regID, map[string]any{"component": component, "n": st.N, "fee_cents": fee.AmountCents})
	})
	return st, err
}

// RetakeGroup is the candidates of one level waiting, with the retake fee
// paid, for a seat in a theory retake.
type RetakeGroup struct {
	LevelID   int64  `json:"level_id"`
	LevelZh   string `json:"level_zh"`
	LevelEn   string `json:"level_en"`
	Component string `json:"component"`
	Waiting   int    `json:"waiting"`
	Threshold int    `json:"threshold"`
	// Dedicated is true when more than the threshold wait: the admin may
	// open a dedicated retake session; otherwise they go into the centre's
	// next scheduled session.
	Dedicated bool `json:"dedicated"`
}

func (s *Service) waiting(tx *gorm.DB, levelID int64) ([]store.Sitting, error) {
	var sts []store.Sitting
	q := tx.Table("sittings").Select("sittings.*").
		Joins("JOIN registrations ON registrations.id = sittings.registration_id").
		Joins("JOIN fees ON fees.id = sittings.fee_id").
		Where("sittings.component = ? AND sittings.n > 1 AND sittings.seat_id IS NULL AND sittings.passed IS NULL AND fees.paid_at IS NOT NULL AND registrations.status = ?",
			string(exam.Theory), RegOpen)
	if levelID != 0 {
		q = q.Where("registrations.level_id = ?", levelID)
	}
	err := q.Order("sittings.id").Scan(&sts).Error
	return sts, err
}

// RetakeQueue counts the theory retakes waiting for a seat, by level.
func (s *Service) RetakeQueue(ctx context.Context) ([]RetakeGroup, error) {
	var levels []store.Level
	if err := s.db.WithContext(ctx).Order("programme_id, rank").Find(&levels).Error; err != nil {
		return nil, err
	}
	out := []RetakeGroup{}
	for _, l := range levels {
		sts, err := s.waiting(s.db.WithContext(ctx), l.ID)
		if err != nil {
			return nil, err
		}
		lv, err := s.level(ctx, s.db.DB, l.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, RetakeGroup{LevelID: l.ID, LevelZh: l.NameZh, LevelEn: l.NameEn, Component: string(exam.Theory),
			Waiting: len(sts), Threshold: lv.policy.DedicatedRetakeThreshold, Dedicated: DedicatedSession(lv.policy, len(sts))})
	}
	return out, nil
}

// PlaceRetakes seats every waiting theory retake of a level: into a new
// dedicated session (allowed only above the threshold) described by spec,
// or into the next scheduled session of the level's theory exam.
func (s *Service) PlaceRetakes(ctx context.Context, actorID, levelID int64, dedicated bool, spec exam.SessionSpec) (int64, int, error) {
	lv, err := s.level(ctx, s.db.DB, levelID)
	if err != nil {
		return 0, 0, err
	}
	sts, err := s.waiting(s.db.WithContext(ctx), levelID)
	if err != nil {
		return 0, 0, err
	}
	if len(sts) == 0 {
		return 0, 0, ErrRetakeNotNeeded
	}
	var sessionID int64
	if dedicated {
		if !DedicatedSession(lv.policy, len(sts)) {
			return 0, 0, fmt.Errorf("%w: %d waiting, a dedicated session needs more than %d", ErrNotOpen, len(sts), lv.policy.DedicatedRetakeThreshold)
		}
		var ex store.Exam
		if err := s.db.WithContext(ctx).Where("level_id = ? AND kind = ?", levelID, "formal").Order("id").Take(&ex).Error; err != nil {
			return 0, 0, ErrNoSession
		}
		spec.ExamID = ex.ID
		if sessionID, err = exam.New(exam.Config{DB: s.db}).CreateSession(ctx, spec, actorID); err != nil {
			return 0, 0, err
		}
	} else {
		var sess store.ExamSession
		err := s.db.WithContext(ctx).Table("exam_sessions").Select("exam_sessions.*").
			Joins("JOIN exams ON exams.id = exam_sessions.exam_id").
			Where("exams.level_id = ? AND exams.kind = ? AND exam_sessions.starts_at > ?", levelID, "formal", s.now()).
			Order("exam_sessions.starts_at").Limit(1).Scan(&sess).Error
		if err != nil {
			return 0, 0, err
		}
		if sess.ID == 0 {
			return 0, 0, ErrNoSession
		}
		sessionID = sess.ID
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, st := range sts {
			if _, err := s.seat(ctx, tx, actorID, st.RegistrationID, sessionID); err != nil {
				return err
			}
		}
		return audit(tx, s.now(), actorID, "retakes_placed", "session", sessionID, map[string]any{"level": levelID, "count": len(sts), "dedicated": dedicated})
	})
	return sessionID, len(sts), err
}

// issue makes the registration's certificate, once.
func (s *Service) issue(tx *gorm.DB, reg *store.Registration, lv *level, now time.Time) (*store.Certificate, error) {
	if c, err := certificateOf(tx, reg.ID); err != nil || c != nil {
		return c, err
	}
	c := &store.Certificate{RegistrationID: reg.ID, Number: newNumber(lv.prog.Code, now), Code: rand.Text()[:8], HolderName: reg.Name,
		IDNumber: reg.IDNumber, LevelID: reg.LevelID, IssuedAt: now}
	if err := tx.Create(c).Error; err != nil {
		return nil, err
	}
	if err := audit(tx, now, 0, "certificate_issued", "certificate", c.ID, map[string]any{"registration": reg.ID, "number": c.Number}); err != nil {
		return nil, err
	}
	return c, s.regNotice(context.Background(), tx, reg.ID, "certificate_issued",
		map[string]string{"number": c.Number, "verify_query": url.Values{"number": {c.Number}, "code": {c.Code}}.Encode()})
}

func certificateOf(tx *gorm.DB, regID int64) (*store.Certificate, error) {
	var c store.Certificate
	err := tx.Where("registration_id = ?", regID).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	return &c, err
}

// newNumber makes a certificate number: the programme's code, the year and
// 12 random base-32 characters (60 bits), so numbers cannot be guessed.
func newNumber(prog string, now time.Time) string {
	code := strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, strings.ToUpper(prog))
	return fmt.Sprintf("%s%d%s", code, now.In(China).Year(), rand.Text()[:12])
}
