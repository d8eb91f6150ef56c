package exam

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/examhall/examhall/store"
)

// Report is the result of verifying an attempt.
type Report struct {
	AttemptID int64
	Events    int
	Status    string
	Answers   int
	Score     *float64
	// Replayed is the score the replayed answers earn against the current key.
	Replayed float64
	Problems []string
}

// OK reports whether the attempt verified.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Verify checks an attempt's hash chain, replays its log to answers and a
// state, and compares them with what the tables hold, then grades the
// replayed answers and compares the score.
func (e *Engine) Verify(ctx context.Context, attemptID int64) (*Report, error) {
	var a store.Attempt
	if err := e.db.WithContext(ctx).Take(&a, attemptID).Error; err != nil {
		return nil, fmt.Errorf("attempt %d: %w", attemptID, err)
	}
	var events []store.AttemptEvent
	if err := e.db.WithContext(ctx).Where("attempt_id = ?", attemptID).Order("n").Find(&events).Error; err != nil {
		return nil, err
	}
	r := &Report{AttemptID: attemptID, Events: len(events), Status: a.Status, Score: a.Score}
	rep, err := Replay(events)
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
		return r, nil
	}
	if rep.Status != a.Status {
		r.Problems = append(r.Problems, fmt.Sprintf("status: log says %s, table says %s", rep.Status, a.Status))
	}
	if a.Deadline != nil && !rep.Deadline.Equal(*a.Deadline) {
		r.Problems = append(r.Problems, fmt.Sprintf("deadline: log says %s, table says %s", rep.Deadline, *a.Deadline))
	}
	var answers []store.Answer
	if err := e.db.WithContext(ctx).Where("attempt_id = ?", attemptID).Find(&answers).Error; err != nil {
		return nil, err
	}
	r.Answers = len(answers)
	table := map[int64]store.Answer{}
	for _, an := range answers {
		table[an.QuestionID] = an
	}
	for q, ra := range rep.Answers {
		an, ok := table[q]
		var v []int
		json.Unmarshal([]byte(an.Value), &v)
		if !ok || !slices.Equal(v, ra.Value) && !(len(v) == 0 && len(ra.Value) == 0) || an.Marked != ra.Marked {
			r.Problems = append(r.Problems, fmt.Sprintf("question %d: log says %v (marked %v), table says %s (marked %v)", q, ra.Value, ra.Marked, an.Value, an.Marked))
		}
	}
	for q := range table {
		if rep.Answers[q] == nil {
			r.Problems = append(r.Problems, fmt.Sprintf("question %d: in the table but not in the log", q))
		}
	}
	// Grade the replayed answers against the key.
	var p Paper
	if err := json.Unmarshal([]byte(a.Paper), &p); err != nil {
		return nil, err
	}
	ids := make([]int64, len(p.Items))
	for i, it := range p.Items {
		ids[i] = it.QuestionID
	}
	var qs []store.Question
	if err := e.db.WithContext(ctx).Where("id IN ?", ids).Find(&qs).Error; err != nil {
		return nil, err
	}
	byID := map[int64]store.Question{}
	for _, q := range qs {
		byID[q.ID] = q
	}
	total := 0.0
	for _, it := range p.Items {
		q := byID[it.QuestionID]
		var key []int
		json.Unmarshal([]byte(q.Answer), &key)
		var chosen []int
		if ra := rep.Answers[q.ID]; ra != nil {
			chosen = ra.Value
		}
		total += Score(Kind(q.Kind), key, chosen, it.Points, q.PartialCredit)
	}
	r.Replayed = round2(total)
	if a.Score != nil && *a.Score != r.Replayed {
		r.Problems = append(r.Problems, fmt.Sprintf("score: table says %g, the replayed answers earn %g", *a.Score, r.Replayed))
	}
	return r, nil
}
