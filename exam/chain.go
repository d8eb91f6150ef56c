package exam

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/examhall/examhall/store"
)

// Event kinds of an attempt's log.
const (
	EvAnswer     = "answer"
	EvMark       = "mark"
	EvStart      = "start"
	EvEnd        = "end"
	EvCredit     = "credit"
	EvConnect    = "connect"
	EvDisconnect = "disconnect"
	EvTakeover   = "takeover"
	EvRegrade    = "regrade"
)

// genesis is the prev_hash of an attempt's first event.
const genesis = "genesis"

// eventHash chains an event to the one before it: any change to an event, or
// a removed or reordered one, breaks every hash after it.
func eventHash(prev string, e *store.AttemptEvent) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n%d\n%s\n%s\n%d\n%s", prev, e.AttemptID, e.N, e.At.UTC().Format(time.RFC3339Nano), e.Kind, e.ClientSeq, e.Data)
	return hex.EncodeToString(h.Sum(nil))
}

// answerData and markData are the data of answer and mark events.
type answerData struct {
	Q int64 `json:"q"`
	V []int `json:"v"`
}

type markData struct {
	Q int64 `json:"q"`
	M bool  `json:"m"`
}

type endData struct {
	Status string   `json:"status"`
	Reason string   `json:"reason"`
	Score  *float64 `json:"score,omitempty"`
}

type timeData struct {
	Deadline time.Time `json:"deadline"`
	Seconds  int       `json:"seconds,omitempty"`
}

// Replayed is an attempt as its log tells it.
type Replayed struct {
	Answers  map[int64]*ReplayedAnswer
	Status   string
	Deadline time.Time
	Events   int
	LastSeq  int64
}

// ReplayedAnswer is one question's state after the log.
type ReplayedAnswer struct {
	Value   []int
	Seq     int64
	Marked  bool
	MarkSeq int64
}

// Replay checks the hash chain of an attempt's events (in order of n) and
// folds them into the attempt's answers and state, by the same rules the
// writer applies: the highest sequence number wins.
func Replay(events []store.AttemptEvent) (*Replayed, error) {
	r := &Replayed{Answers: map[int64]*ReplayedAnswer{}, Status: StatusNotStarted}
	prev := genesis
	for i := range events {
		e := &events[i]
		if e.N != int64(i+1) {
			return nil, fmt.Errorf("%w: event %d has number %d", ErrChainBroken, i+1, e.N)
		}
		if e.PrevHash != prev || eventHash(prev, e) != e.Hash {
			return nil, fmt.Errorf("%w: event %d (%s) does not match its hash", ErrChainBroken, e.N, e.Kind)
		}
		prev = e.Hash
		r.LastSeq = max(r.LastSeq, e.ClientSeq)
		ans := func(q int64) *ReplayedAnswer {
			if r.Answers[q] == nil {
				r.Answers[q] = &ReplayedAnswer{Value: []int{}}
			}
			return r.Answers[q]
		}
		switch e.Kind {
		case EvAnswer:
			var d answerData
			if err := json.Unmarshal([]byte(e.Data), &d); err != nil {
				return nil, fmt.Errorf("%w: event %d: %v", ErrChainBroken, e.N, err)
			}
			if a := ans(d.Q); e.ClientSeq > a.Seq {
				a.Value, a.Seq = d.V, e.ClientSeq
			}
		case EvMark:
			var d markData
			if err := json.Unmarshal([]byte(e.Data), &d); err != nil {
				return nil, fmt.Errorf("%w: event %d: %v", ErrChainBroken, e.N, err)
			}
			if a := ans(d.Q); e.ClientSeq > a.MarkSeq {
				a.Marked, a.MarkSeq = d.M, e.ClientSeq
			}
		case EvStart, EvCredit:
			var d timeData
			json.Unmarshal([]byte(e.Data), &d)
			r.Deadline = d.Deadline
			if e.Kind == EvStart {
				r.Status = StatusInProgress
			}
		case EvEnd:
			var d endData
			json.Unmarshal([]byte(e.Data), &d)
			r.Status = d.Status
		}
	}
	r.Events = len(events)
	return r, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
