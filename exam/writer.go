package exam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/examhall/examhall/store"
)

// op is one change to an attempt, committed by the writer with others in one
// transaction. An op carries a log event; an answer or mark also updates the
// answers table; a state change runs apply first and is refused when apply
// says no.
type op struct {
	attemptID int64
	at        time.Time
	kind      string
	clientSeq int64
	data      []byte
	// requireOpen refuses the op unless the attempt is in progress.
	requireOpen bool
	question    int64
	value       []byte // answers: the JSON value
	marked      bool
	// apply runs in the transaction before the event is appended; returning
	// false refuses the op with refuse and appends nothing.
	apply  func(tx *gorm.DB, st *rowState) (bool, error)
	refuse error
	done   func(error)
}

// rowState is an attempt's state as the batch sees it.
type rowState struct {
	ID       int64
	Status   string
	Deadline *time.Time
}

type head struct {
	n    int64
	hash string
}

// writer is the group committer: answers from every socket go to one
// goroutine, which commits them in small batches; each op's done is called
// once the batch holding it is durable. One fsync then covers many answers.
type writer struct {
	db       *store.DB
	log      *slog.Logger
	in       chan *op
	maxBatch int
	heads    map[int64]head // chain head per attempt, owned by the run goroutine

	mu      sync.RWMutex
	stopped bool
	done    chan struct{}

	batches, ops func(int)
}

func newWriter(db *store.DB, log *slog.Logger, maxBatch int) *writer {
	return &writer{db: db, log: log, in: make(chan *op, 8192), maxBatch: maxBatch, heads: map[int64]head{}, done: make(chan struct{}),
		batches: func(int) {}, ops: func(int) {}}
}

// enqueue hands an op to the writer; it fails once the writer has stopped.
func (w *writer) enqueue(o *op) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.stopped {
		return ErrUnavailable
	}
	w.in <- o
	return nil
}

// do enqueues an op and waits for its commit.
func (w *writer) do(ctx context.Context, o *op) error {
	res := make(chan error, 1)
	o.done = func(err error) { res <- err }
	if err := w.enqueue(o); err != nil {
		return err
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop refuses new ops, commits what is queued and returns when done.
func (w *writer) stop() {
	w.mu.Lock()
	if !w.stopped {
		w.stopped = true
		close(w.in)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *writer) run() {
	defer close(w.done)
	batch := make([]*op, 0, w.maxBatch)
	for o := range w.in {
		batch = append(batch[:0], o)
		// Take whatever else is already waiting, up to a batch: under load
		// batches fill themselves, and a lone answer is committed at once.
	fill:
		for len(batch) < w.maxBatch {
			select {
			case o, ok := <-w.in:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		w.commit(batch)
	}
}

func (w *writer) commit(batch []*op) {
	results := make([]error, len(batch))
	newHeads := map[int64]head{}
	err := w.db.Transaction(func(tx *gorm.DB) error {
		ids := make([]int64, 0, len(batch))
		seen := map[int64]bool{}
		for _, o := range batch {
			if !seen[o.attemptID] {
				seen[o.attemptID] = true
				ids = append(ids, o.attemptID)
			}
		}
		var rows []rowState
		q := tx.Table("attempts").Select("id, status, deadline").Where("id IN ?", ids)
		if w.db.Dialect == store.Postgres {
			// Hold the rows against a concurrent end of the attempt on
			// another node until this batch commits.
			q = q.Clauses(clause.Locking{Strength: "SHARE"})
		}
		if err := q.Scan(&rows).Error; err != nil {
			return err
		}
		states := map[int64]*rowState{}
		for i := range rows {
			states[rows[i].ID] = &rows[i]
		}
		for i, o := range batch {
			st := states[o.attemptID]
			switch {
			case st == nil:
				results[i] = ErrNoAttempt
				continue
			case o.requireOpen && st.Status == StatusNotStarted:
				results[i] = ErrNotStarted
				continue
			case o.requireOpen && st.Status != StatusInProgress:
				results[i] = ErrEnded
				continue
			}
			if o.apply != nil {
				ok, err := o.apply(tx, st)
				if err != nil {
					return err
				}
				if !ok {
					results[i] = o.refuse
					continue
				}
			}
			h, ok := newHeads[o.attemptID]
			if !ok {
				var err error
				if h, err = w.head(tx, o.attemptID); err != nil {
					return err
				}
			}
			e := &store.AttemptEvent{AttemptID: o.attemptID, N: h.n + 1, At: o.at, Kind: o.kind, ClientSeq: o.clientSeq, Data: string(o.data), PrevHash: h.hash}
			e.Hash = eventHash(h.hash, e)
			res := tx.Clauses(clause.OnConflict{
				Columns:     []clause.Column{{Name: "attempt_id"}, {Name: "client_seq"}},
				TargetWhere: clause.Where{Exprs: []clause.Expression{clause.Expr{SQL: "client_seq > 0"}}},
				DoNothing:   true,
			}).Create(e)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				// A resent message: stored already, so acknowledge it, unless
				// the sequence number was reused for something else.
				var prev store.AttemptEvent
				if err := tx.Where("attempt_id = ? AND client_seq = ?", o.attemptID, o.clientSeq).Take(&prev).Error; err != nil {
					return err
				}
				if prev.Kind != o.kind || prev.Data != string(o.data) {
					results[i] = ErrBadSeq
				}
				continue
			}
			newHeads[o.attemptID] = head{e.N, e.Hash}
			switch o.kind {
			case EvAnswer:
				err := tx.Exec(`INSERT INTO answers (attempt_id, question_id, value, seq, marked, mark_seq, saved_at) VALUES (?, ?, ?, ?, FALSE, 0, ?)
					ON CONFLICT (attempt_id, question_id) DO UPDATE SET value = excluded.value, seq = excluded.seq, saved_at = excluded.saved_at
					WHERE answers.seq < excluded.seq`, o.attemptID, o.question, string(o.value), o.clientSeq, o.at).Error
				if err != nil {
					return err
				}
			case EvMark:
				err := tx.Exec(`INSERT INTO answers (attempt_id, question_id, value, seq, marked, mark_seq, saved_at) VALUES (?, ?, '[]', 0, ?, ?, ?)
					ON CONFLICT (attempt_id, question_id) DO UPDATE SET marked = excluded.marked, mark_seq = excluded.mark_seq
					WHERE answers.mark_seq < excluded.mark_seq`, o.attemptID, o.question, o.marked, o.clientSeq, o.at).Error
				if err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		w.log.Error("answer batch failed; nothing in it was acknowledged", "ops", len(batch), "err", err)
		for i := range results {
			results[i] = fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		// The cached heads may be ahead of the database now: reload them.
		for _, o := range batch {
			delete(w.heads, o.attemptID)
		}
	} else {
		for id, h := range newHeads {
			w.heads[id] = h
		}
	}
	w.batches(1)
	w.ops(len(batch))
	for i, o := range batch {
		if o.done != nil {
			o.done(results[i])
		}
	}
}

func (w *writer) head(tx *gorm.DB, attemptID int64) (head, error) {
	if h, ok := w.heads[attemptID]; ok {
		return h, nil
	}
	var e store.AttemptEvent
	err := tx.Where("attempt_id = ?", attemptID).Order("n DESC").Limit(1).Take(&e).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return head{0, genesis}, nil
	}
	if err != nil {
		return head{}, err
	}
	return head{e.N, e.Hash}, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
