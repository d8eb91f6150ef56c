package exam

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
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
	apply func(tx *gorm.DB, st *rowState) (bool, error)
	// readsAnswers makes the batch write the answers before it so far
	// before apply runs (grading reads them).
	readsAnswers bool
	refuse       error
	done         func(error)
	// room and fence, when fence is not 0, are the room's lease under which
	// the op was taken: the batch refuses it if a newer owner has written.
	room  string
	fence int64
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
	seqs     map[int64]*seqSet

	mu      sync.RWMutex
	stopped bool
	done    chan struct{}

	batches, ops func(int)
}

func newWriter(db *store.DB, log *slog.Logger, maxBatch int) *writer {
	return &writer{db: db, log: log, in: make(chan *op, 8192), maxBatch: maxBatch, heads: map[int64]head{}, seqs: map[int64]*seqSet{}, done: make(chan struct{}),
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
		b := &batchTx{tx: tx, dialect: w.db.Dialect}
		states, err := b.states(batch)
		if err != nil {
			return err
		}
		stale, moved, err := b.fences(batch)
		if err != nil {
			return err
		}
		w.forget(batch, func(o *op) bool { return moved[o.room] })
		inBatch := map[seqKey]storedEvent{}
		for i, o := range batch {
			st := states[o.attemptID]
			if results[i] = admit(o, st, stale[o.room]); results[i] != nil {
				continue
			}
			if o.clientSeq > 0 {
				again, refusal, err := w.resent(tx, o, inBatch)
				if err != nil {
					return err
				}
				if again {
					results[i] = refusal
					continue
				}
			}
			if o.apply != nil {
				if o.readsAnswers {
					if err := b.flush(); err != nil {
						return err
					}
				}
				ok, err := o.apply(tx, st)
				if err != nil {
					return err
				}
				if !ok {
					results[i] = o.refuse
					continue
				}
			}
			if err := w.appendEvent(b, newHeads, o); err != nil {
				return err
			}
		}
		return b.flush()
	})
	if err != nil {
		w.log.Error("answer batch failed; nothing in it was acknowledged", "ops", len(batch), "err", err)
		for i := range results {
			results[i] = fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		// The cached heads and sequence sets may be ahead of the database
		// now: reload them.
		w.forget(batch, func(*op) bool { return true })
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

// forget drops what the writer cached (log heads, sequence numbers) of
// the attempts of the batch's ops that match: after a failed batch, or
// when their room came (back) to this node and another owner may have
// written since.
func (w *writer) forget(batch []*op, match func(*op) bool) {
	for _, o := range batch {
		if match(o) {
			delete(w.heads, o.attemptID)
			delete(w.seqs, o.attemptID)
		}
	}
}

// admit says why an op is refused before anything of it is written: a
// former owner's (its fence older than the room's newest), or one for an
// attempt missing or not in progress; nil lets it go on.
func admit(o *op, st *rowState, newestFence int64) error {
	switch {
	case o.fence != 0 && o.fence < newestFence:
		return store.ErrNotOwner
	case st == nil:
		return ErrNoAttempt
	case o.requireOpen && st.Status == StatusNotStarted:
		return ErrNotStarted
	case o.requireOpen && st.Status != StatusInProgress:
		return ErrEnded
	}
	return nil
}

// resent reports whether the op's client sequence number was stored
// before: then the op is acknowledged again (refusal nil), unless the
// number was used for something else (ErrBadSeq). Otherwise the number is
// taken for this op.
func (w *writer) resent(tx *gorm.DB, o *op, inBatch map[seqKey]storedEvent) (again bool, refusal, err error) {
	_, seqs, err := w.load(tx, o.attemptID)
	if err != nil {
		return false, nil, err
	}
	k := seqKey{o.attemptID, o.clientSeq}
	if !seqs.has(o.clientSeq) {
		seqs.add(o.clientSeq)
		inBatch[k] = storedEvent{o.kind, string(o.data)}
		return false, nil, nil
	}
	prev, ok := inBatch[k]
	if !ok {
		if err := tx.Raw("SELECT kind, data FROM attempt_events WHERE attempt_id = ? AND client_seq = ?", o.attemptID, o.clientSeq).
			Row().Scan(&prev.kind, &prev.data); err != nil {
			return false, nil, err
		}
	}
	if prev.kind != o.kind || prev.data != string(o.data) {
		return true, ErrBadSeq, nil
	}
	return true, nil, nil
}

// appendEvent chains the op's event onto its attempt's log and gathers its
// answer or mark.
func (w *writer) appendEvent(b *batchTx, newHeads map[int64]head, o *op) error {
	h, ok := newHeads[o.attemptID]
	if !ok {
		var err error
		if h, _, err = w.load(b.tx, o.attemptID); err != nil {
			return err
		}
	}
	e := store.AttemptEvent{AttemptID: o.attemptID, N: h.n + 1, At: o.at, Kind: o.kind, ClientSeq: o.clientSeq, Data: string(o.data), PrevHash: h.hash}
	e.Hash = eventHash(h.hash, &e)
	newHeads[o.attemptID] = head{e.N, e.Hash}
	b.events = append(b.events, e)
	switch o.kind {
	case EvAnswer:
		b.answer(o)
	case EvMark:
		b.mark(o)
	}
	return nil
}

type seqKey struct{ attempt, seq int64 }

type storedEvent struct{ kind, data string }

// batchTx gathers a batch's rows and writes them with a few multi-row
// statements: per-statement cost, not per-row cost, is what limits SQLite.
type batchTx struct {
	tx      *gorm.DB
	dialect store.Dialect
	events  []store.AttemptEvent
	answers map[seqKey]*op // (attempt, question) → newest answer in the batch
	marks   map[seqKey]*op
}

func (b *batchTx) answer(o *op) {
	if b.answers == nil {
		b.answers = map[seqKey]*op{}
	}
	k := seqKey{o.attemptID, o.question}
	if prev := b.answers[k]; prev == nil || prev.clientSeq < o.clientSeq {
		b.answers[k] = o
	}
}

func (b *batchTx) mark(o *op) {
	if b.marks == nil {
		b.marks = map[seqKey]*op{}
	}
	k := seqKey{o.attemptID, o.question}
	if prev := b.marks[k]; prev == nil || prev.clientSeq < o.clientSeq {
		b.marks[k] = o
	}
}

// states reads the batch's attempts. On PostgreSQL the rows are held
// (FOR SHARE) against a concurrent end of the attempt on another node until
// the batch commits; SQLite's write lock already serialises the two.
func (b *batchTx) states(batch []*op) (map[int64]*rowState, error) {
	ids := make([]int64, 0, len(batch))
	seen := map[int64]bool{}
	for _, o := range batch {
		if !seen[o.attemptID] {
			seen[o.attemptID] = true
			ids = append(ids, o.attemptID)
		}
	}
	var rows []rowState
	q := b.tx.Table("attempts").Select("id, status, deadline").Where("id IN ?", ids)
	if b.dialect == store.Postgres {
		q = q.Clauses(clause.Locking{Strength: "SHARE"})
	}
	if err := q.Scan(&rows).Error; err != nil {
		return nil, err
	}
	states := make(map[int64]*rowState, len(rows))
	for i := range rows {
		states[rows[i].ID] = &rows[i]
	}
	return states, nil
}

// fences checks the batch's rooms' fencing numbers. It returns, per room,
// the newest fence written (ops with an older one come from a former owner
// and are refused) and the rooms whose fence this batch raises (the room
// changed owner since this node last wrote for it). The rows are locked
// until the batch commits, so a new owner's first write waits for a former
// owner's batch in flight, and the former owner's next batch sees the new
// fence.
func (b *batchTx) fences(batch []*op) (newest map[string]int64, raised map[string]bool, err error) {
	want := map[string]int64{}
	for _, o := range batch {
		if o.fence != 0 {
			want[o.room] = max(want[o.room], o.fence)
		}
	}
	if len(want) == 0 {
		return nil, nil, nil
	}
	var rows []struct {
		Room  string
		Fence int64
	}
	q := b.tx.Table("room_fences").Select("room, fence").Where("room IN ?", slices.Collect(maps.Keys(want)))
	if b.dialect == store.Postgres {
		q = q.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	if err := q.Scan(&rows).Error; err != nil {
		return nil, nil, err
	}
	newest = map[string]int64{}
	for _, r := range rows {
		newest[r.Room] = r.Fence
	}
	raised = map[string]bool{}
	for room, f := range want {
		if f <= newest[room] {
			continue
		}
		// Another node may have raised it since the read (a row that did
		// not exist locks nothing): raise only upward, then read it back.
		err := b.tx.Exec(`INSERT INTO room_fences (room, fence) VALUES (?, ?)
			ON CONFLICT (room) DO UPDATE SET fence = excluded.fence WHERE room_fences.fence < excluded.fence`, room, f).Error
		if err == nil {
			err = b.tx.Raw("SELECT fence FROM room_fences WHERE room = ?", room).Row().Scan(&f)
		}
		if err != nil {
			return nil, nil, err
		}
		newest[room], raised[room] = f, true
	}
	return newest, raised, nil
}

// flush writes the rows gathered so far.
func (b *batchTx) flush() error {
	const chunk = 200
	for len(b.events) > 0 {
		n := min(len(b.events), chunk)
		var sb strings.Builder
		sb.WriteString("INSERT INTO attempt_events (attempt_id, n, at, kind, client_seq, data, prev_hash, hash) VALUES ")
		args := make([]any, 0, n*8)
		for i, e := range b.events[:n] {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, e.AttemptID, e.N, e.At, e.Kind, e.ClientSeq, e.Data, e.PrevHash, e.Hash)
		}
		if err := b.tx.Exec(sb.String(), args...).Error; err != nil {
			return err
		}
		b.events = b.events[n:]
	}
	if err := b.upsert(b.answers, `INSERT INTO answers (attempt_id, question_id, value, seq, marked, mark_seq, saved_at) VALUES %s
		ON CONFLICT (attempt_id, question_id) DO UPDATE SET value = excluded.value, seq = excluded.seq, saved_at = excluded.saved_at
		WHERE answers.seq < excluded.seq`, func(o *op) []any {
		return []any{o.attemptID, o.question, string(o.value), o.clientSeq, false, 0, o.at}
	}); err != nil {
		return err
	}
	b.answers = nil
	if err := b.upsert(b.marks, `INSERT INTO answers (attempt_id, question_id, value, seq, marked, mark_seq, saved_at) VALUES %s
		ON CONFLICT (attempt_id, question_id) DO UPDATE SET marked = excluded.marked, mark_seq = excluded.mark_seq
		WHERE answers.mark_seq < excluded.mark_seq`, func(o *op) []any {
		return []any{o.attemptID, o.question, "[]", 0, o.marked, o.clientSeq, o.at}
	}); err != nil {
		return err
	}
	b.marks = nil
	return nil
}

func (b *batchTx) upsert(rows map[seqKey]*op, sql string, values func(*op) []any) error {
	if len(rows) == 0 {
		return nil
	}
	var vals []string
	var args []any
	for _, o := range rows {
		vals = append(vals, "(?, ?, ?, ?, ?, ?, ?)")
		args = append(args, values(o)...)
	}
	return b.tx.Exec(fmt.Sprintf(sql, strings.Join(vals, ", ")), args...).Error
}

// load returns an attempt's chain head and stored sequence numbers, read
// from its log on first use and kept while this node writes the attempt.
func (w *writer) load(tx *gorm.DB, attemptID int64) (head, *seqSet, error) {
	if h, ok := w.heads[attemptID]; ok {
		return h, w.seqs[attemptID], nil
	}
	rows, err := tx.Raw("SELECT n, hash, client_seq FROM attempt_events WHERE attempt_id = ? ORDER BY n", attemptID).Rows()
	if err != nil {
		return head{}, nil, err
	}
	defer rows.Close()
	h, seqs := head{0, genesis}, &seqSet{}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&h.n, &h.hash, &seq); err != nil {
			return head{}, nil, err
		}
		if seq > 0 {
			seqs.add(seq)
		}
	}
	if err := rows.Err(); err != nil {
		return head{}, nil, err
	}
	w.heads[attemptID], w.seqs[attemptID] = h, seqs
	return h, seqs, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// MaxSeq bounds client sequence numbers (a 120-minute exam sends a few
// hundred), so a sequence set stays small whatever a client sends.
const MaxSeq = 1 << 20

// seqSet is the set of client sequence numbers stored for one attempt, kept
// by the writer so a resent answer is recognised without a database lookup.
type seqSet struct{ bits []uint64 }

func (s *seqSet) has(n int64) bool {
	i := int(n / 64)
	return i < len(s.bits) && s.bits[i]&(1<<(n%64)) != 0
}

func (s *seqSet) add(n int64) {
	i := int(n / 64)
	if i >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, i+1-len(s.bits))...)
	}
	s.bits[i] |= 1 << (n % 64)
}
