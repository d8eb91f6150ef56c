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

// ErrImport is an import refused for invalid lines; Lines says which.
type ErrImport struct{ Lines []LineError }

func (e *ErrImport) Error() string {
	return fmt.Sprintf("exam: %d invalid lines; nothing imported", len(e.Lines))
}
func (e *ErrImport) Code() string { return "invalid_import" }
func (e *ErrImport) Status() int  { return 400 }

// ImportQuestions adds questions to a programme's bank, all or none.
func ImportQuestions(ctx context.Context, db *store.DB, programmeID int64, qs []Question) (int, error) {
	if len(qs) == 0 {
		return 0, &ErrImport{[]LineError{{0, "file", "no questions"}}}
	}
	rows := make([]store.Question, len(qs))
	now := time.Now().UTC()
	for i, q := range qs {
		rows[i] = toRow(programmeID, q, now)
	}
	err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Take(&store.Programme{}, programmeID).Error; err != nil {
			return err
		}
		return tx.CreateInBatches(rows, 200).Error
	})
	return len(rows), err
}

func toRow(programmeID int64, q Question, now time.Time) store.Question {
	if q.Tags == nil {
		q.Tags = []string{}
	}
	return store.Question{ProgrammeID: programmeID, Kind: string(q.Kind), Stem: q.Stem, Options: string(mustJSON(q.Options)),
		Answer: string(mustJSON(q.Answer)), Tags: string(mustJSON(q.Tags)), Difficulty: q.Difficulty, PartialCredit: q.PartialCredit,
		Explanation: q.Explanation, CreatedAt: now, UpdatedAt: now}
}

// FromRow turns a stored question back into its import form (with the key).
func FromRow(r store.Question) Question {
	q := Question{Kind: Kind(r.Kind), Stem: r.Stem, Difficulty: r.Difficulty, PartialCredit: r.PartialCredit, Explanation: r.Explanation}
	json.Unmarshal([]byte(r.Options), &q.Options)
	json.Unmarshal([]byte(r.Answer), &q.Answer)
	json.Unmarshal([]byte(r.Tags), &q.Tags)
	return q
}

// Bank lists a programme's questions with their ids.
func Bank(ctx context.Context, db *store.DB, programmeID int64) ([]store.Question, error) {
	var rows []store.Question
	err := db.WithContext(ctx).Where("programme_id = ?", programmeID).Order("id").Find(&rows).Error
	return rows, err
}

// RegradeReport says what a key correction changed.
type RegradeReport struct {
	QuestionID int64 `json:"question_id"`
	Attempts   int   `json:"attempts"`
	Changed    int   `json:"changed"`
}

// CorrectKey changes a question's key and regrades every ended attempt whose
// paper has it. Each changed score is written to the attempt's log and the
// audit trail with the reason.
func (e *Engine) CorrectKey(ctx context.Context, questionID int64, key []int, actorID int64, reason string) (*RegradeReport, error) {
	if reason == "" {
		return nil, fmt.Errorf("%w: a key correction needs a reason", ErrBadValue)
	}
	var row store.Question
	if err := e.db.WithContext(ctx).Take(&row, questionID).Error; err != nil {
		return nil, err
	}
	q := FromRow(row)
	old := q.Answer
	q.Answer = key
	if errs := q.Validate(1); len(errs) > 0 {
		return nil, &ErrImport{errs}
	}
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&row).Updates(map[string]any{"answer": string(mustJSON(key)), "updated_at": time.Now().UTC()}).Error; err != nil {
			return err
		}
		return tx.Create(&store.AuditEvent{At: time.Now().UTC(), ActorID: &actorID, Action: "key_corrected", ObjectType: "question",
			ObjectID: itoa(questionID), Detail: string(mustJSON(map[string]any{"old": old, "new": key, "reason": reason}))}).Error
	})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	clear(e.exams) // every cached exam of the bank has the old key
	e.mu.Unlock()

	var attempts []store.Attempt
	err = e.db.WithContext(ctx).Joins("JOIN exams ON exams.id = attempts.exam_id").
		Where("exams.programme_id = ? AND attempts.status IN ? AND attempts.paper LIKE ?", row.ProgrammeID,
			[]string{StatusSubmitted, StatusAutoSubmitted, StatusTerminated}, fmt.Sprintf(`%%"q":%d,%%`, questionID)).
		Find(&attempts).Error
	if err != nil {
		return nil, err
	}
	rep := &RegradeReport{QuestionID: questionID, Attempts: len(attempts)}
	for _, a := range attempts {
		info, err := e.exam(ctx, a.ExamID)
		if err != nil {
			return nil, err
		}
		o := &op{attemptID: a.ID, at: e.now(), kind: EvRegrade, readsAnswers: true}
		o.apply = func(tx *gorm.DB, st *rowState) (bool, error) {
			score, passed, err := grade(tx, info, &a)
			if err != nil {
				return false, err
			}
			if a.Status == StatusTerminated {
				passed = false
			}
			if a.Score != nil && *a.Score == score {
				return false, nil
			}
			if err := tx.Model(&store.Attempt{}).Where("id = ?", a.ID).Updates(map[string]any{"score": score, "passed": passed}).Error; err != nil {
				return false, err
			}
			detail := map[string]any{"question": questionID, "old": a.Score, "new": score, "reason": reason}
			o.data = mustJSON(detail)
			return true, tx.Create(&store.AuditEvent{At: time.Now().UTC(), ActorID: &actorID, Action: "regraded", ObjectType: "attempt",
				ObjectID: itoa(a.ID), Detail: string(o.data)}).Error
		}
		if err := e.w.do(ctx, o); err != nil {
			return nil, err
		}
		if o.data != nil {
			rep.Changed++
		}
	}
	return rep, nil
}

// ResultRow is one attempt of a session in the results list.
type ResultRow struct {
	AttemptID int64      `json:"attempt_id"`
	Ticket    string     `json:"ticket"`
	Name      string     `json:"name"`
	Room      string     `json:"room"`
	Status    string     `json:"status"`
	StartedAt *time.Time `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
	Score     *float64   `json:"score"`
	Passed    *bool      `json:"passed"`
	Credited  int        `json:"credited_seconds"`
}

// SessionResults lists every attempt of a session, by ticket.
func SessionResults(ctx context.Context, db *store.DB, sessionID int64) ([]ResultRow, error) {
	var rows []ResultRow
	err := db.WithContext(ctx).Table("attempts").
		Select(`attempts.id AS attempt_id, seats.ticket, users.display_name AS name, rooms.name AS room, attempts.status,
			attempts.started_at, attempts.ended_at, attempts.score, attempts.passed, attempts.credited_seconds AS credited`).
		Joins("JOIN seats ON seats.id = attempts.seat_id").
		Joins("JOIN users ON users.id = attempts.candidate_id").
		Joins("JOIN rooms ON rooms.id = seats.room_id").
		Where("attempts.session_id = ?", sessionID).Order("seats.ticket").Scan(&rows).Error
	return rows, err
}

// QuestionStat is how one question fared in a session.
type QuestionStat struct {
	QuestionID int64   `json:"question_id"`
	Kind       string  `json:"kind"`
	Stem       string  `json:"stem"`
	OnPapers   int     `json:"on_papers"`
	Answered   int     `json:"answered"`
	Correct    int     `json:"correct"`
	AvgPoints  float64 `json:"avg_points"`
	// Facility is the share of graded papers that earned full points.
	Facility float64 `json:"facility"`
}

// SessionStats computes per-question statistics over a session's ended attempts.
func SessionStats(ctx context.Context, db *store.DB, sessionID int64) ([]QuestionStat, error) {
	var attempts []store.Attempt
	if err := db.WithContext(ctx).Where("session_id = ? AND status IN ?", sessionID,
		[]string{StatusSubmitted, StatusAutoSubmitted, StatusTerminated}).Find(&attempts).Error; err != nil {
		return nil, err
	}
	stats := map[int64]*QuestionStat{}
	points := map[int64]float64{}
	var order []int64
	ids := make([]int64, 0, len(attempts))
	for _, a := range attempts {
		ids = append(ids, a.ID)
		var p Paper
		json.Unmarshal([]byte(a.Paper), &p)
		for _, it := range p.Items {
			s := stats[it.QuestionID]
			if s == nil {
				s = &QuestionStat{QuestionID: it.QuestionID}
				stats[it.QuestionID] = s
				order = append(order, it.QuestionID)
				points[it.QuestionID] = it.Points
			}
			s.OnPapers++
		}
	}
	if len(ids) == 0 {
		return []QuestionStat{}, nil
	}
	var answers []store.Answer
	if err := db.WithContext(ctx).Where("attempt_id IN ? AND value <> '[]'", ids).Find(&answers).Error; err != nil {
		return nil, err
	}
	sum := map[int64]float64{}
	for _, an := range answers {
		s := stats[an.QuestionID]
		if s == nil {
			continue
		}
		s.Answered++
		if an.Points != nil {
			sum[an.QuestionID] += *an.Points
			if *an.Points >= points[an.QuestionID] {
				s.Correct++
			}
		}
	}
	var qs []store.Question
	db.WithContext(ctx).Where("id IN ?", order).Find(&qs)
	for _, q := range qs {
		stats[q.ID].Kind, stats[q.ID].Stem = q.Kind, q.Stem
	}
	out := make([]QuestionStat, 0, len(order))
	for _, id := range order {
		s := stats[id]
		s.AvgPoints = round2(sum[id] / float64(s.OnPapers))
		s.Facility = round2(float64(s.Correct) / float64(s.OnPapers))
		out = append(out, *s)
	}
	return out, nil
}

var errNoSession = errors.New("no such session")
