package certify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

// FormPanel puts reviewers on the panel of a submitted practical or review
// sitting, replacing a panel that has not scored yet. The panel rules
// (size, odd number, conflicts of interest) are applied.
func (s *Service) FormPanel(ctx context.Context, actorID, sittingID int64, members []int64) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lock(tx, "sittings", sittingID); err != nil {
			return err
		}
		st, reg, lv, err := s.sitting(ctx, tx, sittingID)
		if err != nil {
			return err
		}
		if st.Component == string(exam.Theory) || st.Passed != nil || st.SubmittedAt == nil {
			return fmt.Errorf("%w: a panel scores a submitted practical or review", ErrNotOpen)
		}
		var scored int64
		if err := tx.Model(&store.PanelSeat{}).Where("sitting_id = ? AND scored_at IS NOT NULL", st.ID).Count(&scored).Error; err != nil {
			return err
		}
		if scored > 0 {
			return fmt.Errorf("%w: the panel has started scoring", ErrNotOpen)
		}
		proposed := make([]PanelMember, 0, len(members))
		for _, id := range members {
			m, err := s.member(tx, id, reg.ID)
			if err != nil {
				return err
			}
			proposed = append(proposed, m)
		}
		if err := CheckPanel(lv.policy, reg.Organisation, proposed); err != nil {
			return err
		}
		if err := tx.Where("sitting_id = ?", st.ID).Delete(&store.PanelSeat{}).Error; err != nil {
			return err
		}
		for _, id := range members {
			if err := tx.Create(&store.PanelSeat{SittingID: st.ID, UserID: id}).Error; err != nil {
				return err
			}
		}
		if err := audit(tx, s.now(), actorID, "panel_formed", "sitting", st.ID, map[string]any{"members": members}); err != nil {
			return err
		}
		return s.panelNotices(ctx, tx, st, reg, lv, members)
	})
}

// member describes a reviewer for the panel rules.
func (s *Service) member(tx *gorm.DB, userID, regID int64) (PanelMember, error) {
	var u store.User
	if err := tx.Take(&u, userID).Error; err != nil || u.Role != store.RolePanel || u.Disabled {
		return PanelMember{}, fmt.Errorf("%w: user %d is not a panel member", ErrPanelMember, userID)
	}
	m := PanelMember{UserID: userID}
	var a store.Affiliation
	if err := tx.Where("user_id = ?", userID).Take(&a).Error; err == nil {
		m.Organisation = a.Organisation
	}
	var n int64
	if err := tx.Model(&store.DeclaredConflict{}).Where("user_id = ? AND registration_id = ?", userID, regID).Count(&n).Error; err != nil {
		return m, err
	}
	m.Declared = n > 0
	return m, nil
}

func (s *Service) sitting(ctx context.Context, tx *gorm.DB, id int64) (*store.Sitting, *store.Registration, *level, error) {
	var st store.Sitting
	var reg store.Registration
	if err := tx.Take(&st, id).Error; err != nil {
		return nil, nil, nil, err
	}
	if err := tx.Take(&reg, st.RegistrationID).Error; err != nil {
		return nil, nil, nil, err
	}
	lv, err := s.level(ctx, tx, reg.LevelID)
	return &st, &reg, lv, err
}

// SetAffiliation records a panel member's organisation (an admin action).
func (s *Service) SetAffiliation(ctx context.Context, actorID, userID int64, org string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var u store.User
		if err := tx.Take(&u, userID).Error; err != nil || u.Role != store.RolePanel {
			return fmt.Errorf("%w: user %d is not a panel member", ErrPanelMember, userID)
		}
		if err := tx.Save(&store.Affiliation{UserID: userID, Organisation: strings.TrimSpace(org)}).Error; err != nil {
			return err
		}
		return audit(tx, s.now(), actorID, "affiliation_set", "user", userID, map[string]string{"organisation": org})
	})
}

// DeclareConflict records a reviewer's declaration that they may not assess
// a sitting's candidate; they leave its panel if they have not scored.
func (s *Service) DeclareConflict(ctx context.Context, userID, sittingID int64, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return ErrReason
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		st, reg, _, err := s.sitting(ctx, tx, sittingID)
		if err != nil {
			return err
		}
		var seat store.PanelSeat
		if err := tx.Where("sitting_id = ? AND user_id = ?", st.ID, userID).Take(&seat).Error; err != nil {
			return ErrNotOnPanel
		}
		now := s.now()
		if err := tx.Save(&store.DeclaredConflict{UserID: userID, RegistrationID: reg.ID, Reason: reason, DeclaredAt: now}).Error; err != nil {
			return err
		}
		if seat.ScoredAt == nil && st.Passed == nil {
			if err := tx.Delete(&seat).Error; err != nil {
				return err
			}
		}
		return audit(tx, now, userID, "conflict_declared", "sitting", st.ID, map[string]any{"registration": reg.ID, "reason": reason})
	})
}

// Score records a panel member's score and comment. Members score
// independently and may change their score until the whole panel has
// scored; then the component score is set (mean or median, pass mark).
// Every score and change is audited.
func (s *Service) Score(ctx context.Context, userID, sittingID int64, score float64, comment string) error {
	if err := CheckScore(score, comment); err != nil {
		return err
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lock(tx, "sittings", sittingID); err != nil {
			return err
		}
		st, reg, lv, err := s.sitting(ctx, tx, sittingID)
		if err != nil {
			return err
		}
		var seat store.PanelSeat
		if err := tx.Where("sitting_id = ? AND user_id = ?", st.ID, userID).Take(&seat).Error; err != nil {
			return ErrNotOnPanel
		}
		if m, err := s.member(tx, userID, reg.ID); err != nil {
			return err
		} else if Conflicted(reg.Organisation, m) {
			return ErrConflict
		}
		if st.Passed != nil {
			return fmt.Errorf("%w: the panel's result is final", ErrNotOpen)
		}
		now := s.now()
		old, changed := seat.Score, seat.ScoredAt != nil
		if err := tx.Model(&store.PanelSeat{}).Where("sitting_id = ? AND user_id = ?", st.ID, userID).
			Updates(map[string]any{"score": score, "comment": comment, "scored_at": now}).Error; err != nil {
			return err
		}
		action := "panel_scored"
		if changed {
			action = "panel_score_changed"
		}
		if err := audit(tx, now, userID, action, "sitting", st.ID, map[string]any{"old": old, "new": score, "comment": comment}); err != nil {
			return err
		}
		var seats []store.PanelSeat
		if err := tx.Where("sitting_id = ?", st.ID).Find(&seats).Error; err != nil {
			return err
		}
		var scores []float64
		for _, p := range seats {
			if p.Score == nil {
				return nil // not everyone has scored
			}
			scores = append(scores, *p.Score)
		}
		total := Aggregate(lv.policy.ScoreMethod, scores)
		pass := Passes(lv.policy, total)
		if err := tx.Model(st).Updates(map[string]any{"score": total, "passed": pass, "decided_at": now}).Error; err != nil {
			return err
		}
		if err := audit(tx, now, 0, "component_scored", "sitting", st.ID, map[string]any{"method": lv.policy.ScoreMethod, "scores": scores, "score": total, "passed": pass}); err != nil {
			return err
		}
		st.Score, st.Passed = &total, &pass
		return s.resultNotice(ctx, tx, st)
	})
	if err != nil {
		return err
	}
	var st store.Sitting
	if err := s.db.WithContext(ctx).Take(&st, sittingID).Error; err != nil {
		return err
	}
	_, err = s.Settle(ctx, st.RegistrationID)
	return err
}

// ScheduleDefence sets the time of a review sitting's defence (答辩) with
// its panel.
func (s *Service) ScheduleDefence(ctx context.Context, actorID, sittingID int64, at time.Time) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		st, _, _, err := s.sitting(ctx, tx, sittingID)
		if err != nil {
			return err
		}
		if st.Component != string(exam.Review) || st.Passed != nil || at.IsZero() {
			return fmt.Errorf("%w: a defence belongs to an undecided comprehensive review", ErrNotOpen)
		}
		if err := tx.Model(st).Update("defence_at", at.UTC()).Error; err != nil {
			return err
		}
		return audit(tx, s.now(), actorID, "defence_scheduled", "sitting", st.ID, map[string]any{"at": at.UTC()})
	})
}

// PanelScore is one member's score as a panel member sees it.
type PanelScore struct {
	UserID  int64    `json:"user_id"`
	Name    string   `json:"name"`
	Score   *float64 `json:"score"`
	Comment string   `json:"comment,omitempty"`
	Scored  bool     `json:"scored"`
}

// PanelItem is a sitting as its panel members see it: the candidate, the
// document, the member's own score, and the others' only once all scored.
type PanelItem struct {
	SittingID   int64        `json:"sitting_id"`
	Component   string       `json:"component"`
	N           int          `json:"n"`
	Candidate   string       `json:"candidate"`
	Level       string       `json:"level"`
	FileName    string       `json:"file_name"`
	FileSHA256  string       `json:"file_sha256"`
	SubmittedAt *time.Time   `json:"submitted_at"`
	DefenceAt   *time.Time   `json:"defence_at,omitempty"`
	Mine        *PanelScore  `json:"mine"`
	AllScored   bool         `json:"all_scored"`
	Scored      int          `json:"scored"`
	Members     int          `json:"members"`
	Scores      []PanelScore `json:"scores,omitempty"`
	Score       *float64     `json:"score,omitempty"`
	Passed      *bool        `json:"passed,omitempty"`
}

// PanelQueue lists the sittings whose panel userID sits on (every sitting
// with a panel for an admin, userID 0).
func (s *Service) PanelQueue(ctx context.Context, userID int64) ([]PanelItem, error) {
	q := s.db.WithContext(ctx).Model(&store.PanelSeat{}).Distinct("sitting_id")
	if userID != 0 {
		q = q.Where("user_id = ?", userID)
	}
	var ids []int64
	if err := q.Order("sitting_id").Pluck("sitting_id", &ids).Error; err != nil {
		return nil, err
	}
	out := make([]PanelItem, 0, len(ids))
	for _, id := range ids {
		it, err := s.PanelItem(ctx, userID, id)
		if err != nil {
			return nil, err
		}
		out = append(out, *it)
	}
	return out, nil
}

// PanelItem shows one sitting to a member of its panel (or to an admin,
// userID 0, who sees every score).
func (s *Service) PanelItem(ctx context.Context, userID, sittingID int64) (*PanelItem, error) {
	db := s.db.WithContext(ctx)
	st, reg, lv, err := s.sitting(ctx, db, sittingID)
	if err != nil {
		return nil, err
	}
	var seats []store.PanelSeat
	if err := db.Where("sitting_id = ?", st.ID).Order("user_id").Find(&seats).Error; err != nil {
		return nil, err
	}
	it := &PanelItem{SittingID: st.ID, Component: st.Component, N: st.N, Candidate: reg.Name, Level: lv.row.NameZh + " / " + lv.row.NameEn,
		FileName: st.FileName, FileSHA256: st.FileSHA256, SubmittedAt: st.SubmittedAt, DefenceAt: st.DefenceAt, Members: len(seats), AllScored: len(seats) > 0}
	member := userID == 0
	var all []PanelScore
	for _, p := range seats {
		var u store.User
		db.Take(&u, p.UserID)
		ps := PanelScore{UserID: p.UserID, Name: u.DisplayName, Score: p.Score, Comment: p.Comment, Scored: p.ScoredAt != nil}
		if ps.Scored {
			it.Scored++
		} else {
			it.AllScored = false
		}
		if p.UserID == userID {
			member, it.Mine = true, &ps
		}
		all = append(all, ps)
	}
	if !member {
		return nil, ErrNotOnPanel
	}
	if it.AllScored || userID == 0 {
		it.Scores, it.Score, it.Passed = all, st.Score, st.Passed
	}
	return it, nil
}
