package review

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/examhall/examhall/store"
)

// Errors of the review.
var (
	ErrBadDecision = store.NewError("review", store.Invalid, "bad_decision", "a decision is valid, or invalid with a reason")
	ErrNotEnded    = store.NewError("review", store.Conflict, "not_ended", "an attempt can be decided once it has ended")
)

// Row is one attempt in a session's review list.
type Row struct {
	AttemptID int64          `json:"attempt_id"`
	Ticket    string         `json:"ticket"`
	Name      string         `json:"name"`
	Room      string         `json:"room"`
	Status    string         `json:"status"`
	Score     *float64       `json:"score"`
	Passed    *bool          `json:"passed"`
	Flags     map[string]int `json:"flags" gorm:"-"`
	// Confirmed counts the flags an invigilator or reviewer confirmed.
	Confirmed int    `json:"confirmed" gorm:"-"`
	Decision  string `json:"decision"`
	Reason    string `json:"reason,omitempty"`
}

// List gives a session's attempts for review. filter is "", "unreviewed",
// "critical" (has a critical flag) or "terminated".
func (rv *Reviews) List(ctx context.Context, sessionID int64, filter string) ([]Row, error) {
	var rows []Row
	q := rv.db.WithContext(ctx).Table("attempts").
		Select(`attempts.id AS attempt_id, seats.ticket, users.display_name AS name, rooms.name AS room, attempts.status, attempts.score, attempts.passed,
			COALESCE(attempt_reviews.decision, '') AS decision, COALESCE(attempt_reviews.reason, '') AS reason`).
		Joins("JOIN seats ON seats.id = attempts.seat_id").
		Joins("JOIN users ON users.id = attempts.candidate_id").
		Joins("JOIN rooms ON rooms.id = seats.room_id").
		Joins("LEFT JOIN attempt_reviews ON attempt_reviews.attempt_id = attempts.id").
		Where("attempts.session_id = ?", sessionID).Order("seats.ticket")
	switch filter {
	case "unreviewed":
		q = q.Where("attempt_reviews.attempt_id IS NULL")
	case "critical":
		q = q.Where("EXISTS (SELECT 1 FROM flags WHERE flags.attempt_id = attempts.id AND flags.severity = 'critical')")
	case "terminated":
		q = q.Where("attempts.status = 'terminated'")
	}
	if err := q.Scan(&rows).Error; err != nil {
		return nil, err
	}
	ids := make([]int64, len(rows))
	for i := range rows {
		ids[i] = rows[i].AttemptID
		rows[i].Flags = map[string]int{}
	}
	var counts []struct {
		AttemptID int64
		Severity  string
		Confirmed bool
		N         int
	}
	if len(ids) > 0 {
		err := rv.db.WithContext(ctx).Table("flags").Select("attempt_id, severity, status = 'confirmed' AS confirmed, COUNT(*) AS n").
			Where("attempt_id IN ?", ids).Group("attempt_id, severity, status = 'confirmed'").Scan(&counts).Error
		if err != nil {
			return nil, err
		}
	}
	at := map[int64]int{}
	for i, r := range rows {
		at[r.AttemptID] = i
	}
	for _, c := range counts {
		row := &rows[at[c.AttemptID]]
		row.Flags[c.Severity] += c.N
		if c.Confirmed {
			row.Confirmed += c.N
		}
	}
	return rows, nil
}

// Event is something that happened in an attempt, for the timeline.
type Event struct {
	At     time.Time `json:"at"`
	Kind   string    `json:"kind"`
	Detail string    `json:"detail,omitempty"`
}

// Events lists an attempt's exam events (start, end, credits, takeovers)
// and the invigilators' actions on it.
func (rv *Reviews) Events(ctx context.Context, attemptID int64) ([]Event, error) {
	var out []Event
	var evs []store.AttemptEvent
	if err := rv.db.WithContext(ctx).Where("attempt_id = ? AND kind IN ?", attemptID, []string{"start", "end", "credit", "takeover", "regrade"}).Order("n").Find(&evs).Error; err != nil {
		return nil, err
	}
	for _, e := range evs {
		out = append(out, Event{At: e.At, Kind: e.Kind, Detail: e.Data})
	}
	var audits []store.AuditEvent
	if err := rv.db.WithContext(ctx).Where("object_type = 'attempt' AND object_id = ?", strconv.FormatInt(attemptID, 10)).Order("id").Find(&audits).Error; err != nil {
		return nil, err
	}
	for _, a := range audits {
		out = append(out, Event{At: a.At, Kind: a.Action, Detail: a.Detail})
	}
	return out, nil
}

// Decide records the final decision on an ended attempt: valid, or invalid
// with a reason, in which case the attempt does not pass. It is audited.
func (rv *Reviews) Decide(ctx context.Context, attemptID, reviewer int64, decision, reason string) error {
	reason = strings.TrimSpace(reason)
	if decision != "valid" && (decision != "invalid" || reason == "") {
		return ErrBadDecision
	}
	return rv.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var a store.Attempt
		if err := tx.Take(&a, attemptID).Error; err != nil {
			return err
		}
		if a.Status == "not_started" || a.Status == "in_progress" {
			return ErrNotEnded
		}
		now := time.Now().UTC()
		r := &store.AttemptReview{AttemptID: attemptID, Decision: decision, Reason: reason, DecidedBy: reviewer, DecidedAt: now}
		if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(r).Error; err != nil {
			return err
		}
		// The result respects the decision: an invalid attempt does not pass;
		// a valid one passes on its score again.
		passed := false
		if decision == "valid" && a.Status != "terminated" && a.Score != nil {
			var pass int
			if err := tx.Table("exams").Select("pass_mark").Where("id = ?", a.ExamID).Row().Scan(&pass); err != nil {
				return err
			}
			passed = store.Passes(*a.Score, pass)
		}
		if err := tx.Model(&store.Attempt{}).Where("id = ?", attemptID).Update("passed", passed).Error; err != nil {
			return err
		}
		d, _ := json.Marshal(map[string]any{"decision": decision, "reason": reason, "passed": passed})
		return tx.Create(&store.AuditEvent{At: now, ActorID: &reviewer, Action: "review_decided", ObjectType: "attempt",
			ObjectID: strconv.FormatInt(attemptID, 10), Detail: string(d)}).Error
	})
}

// Decision is an attempt's final decision, if any.
func (rv *Reviews) Decision(ctx context.Context, attemptID int64) (*store.AttemptReview, error) {
	var r store.AttemptReview
	err := rv.db.WithContext(ctx).Take(&r, attemptID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("review decision: %w", err)
	}
	return &r, nil
}

// Reviews is the review of ended attempts: the reviewers' list, an
// attempt's recordings, events, outcome and decision, and the retention of
// recordings.
type Reviews struct{ db *store.DB }

// New returns the reviews kept in db.
func New(db *store.DB) *Reviews { return &Reviews{db: db} }
