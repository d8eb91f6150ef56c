package exam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/examhall/examhall/store"
	"gorm.io/gorm"
)

// Conn is a device connection as the engine sees it (the web layer's
// websocket satisfies it).
type Conn interface {
	Peer
	Context() context.Context
	Set(key, v any)
	Value(key any) any
}

type handleKey struct{}

// MessageFunc handles one message type of the candidate's socket.
type MessageFunc func(ctx context.Context, c Conn, id json.RawMessage, seq *int64, raw []byte) error

// TimeSyncEvery is how often the server pushes its time to a connected page.
const TimeSyncEvery = 30 * time.Second

// warnAt are the minutes left at which the page is warned.
var warnAt = []int{30, 15, 5, 1}

// OpenConn admits a candidate's PC socket to their attempt (the attempt
// query parameter), before the upgrade. page is the page's own random token
// (the page query parameter): a connection from the same page replaces its
// predecessor quietly, one from another page is a second login.
func (e *Engine) OpenConn(ctx context.Context, c Conn, candidateID int64, attempt, page string) error {
	id, page, err := parseOpen(attempt, page)
	if err != nil {
		return err
	}
	h, err := e.Open(ctx, candidateID, id)
	if err != nil {
		return err
	}
	c.Set(handleKey{}, h)
	if page != "" {
		c.Set(pageKey{}, page)
	}
	return nil
}

// parseOpen reads a socket's query: a positive attempt id, and the page
// token when it is 16 to 64 bytes (else none: the connection is then
// another page's).
func parseOpen(attempt, page string) (int64, string, error) {
	id, err := strconv.ParseInt(attempt, 10, 64)
	if err != nil || id <= 0 {
		return 0, "", ErrNoAttempt
	}
	if len(page) < 16 || len(page) > 64 {
		page = ""
	}
	return id, page, nil
}

type pageKey struct{}

// ConnReady attaches the connection and starts its clock: a time sync every
// 30 s and warnings at 30, 15, 5 and 1 minutes left.
func (e *Engine) ConnReady(c Conn, connID string) {
	h := c.Value(handleKey{}).(*Handle)
	e.Attach(c.Context(), h, c, connID)
	go e.clock(c, h)
}

// AttemptOf is the attempt a candidate's socket was opened for.
func AttemptOf(c Conn) int64 {
	if h, ok := c.Value(handleKey{}).(*Handle); ok {
		return h.l.id
	}
	return 0
}

// Push sends a message to the attempt's PC page if it is connected to this
// node; it reports whether it did.
func (e *Engine) Push(attemptID int64, v any) bool {
	e.mu.Lock()
	l := e.live[attemptID]
	e.mu.Unlock()
	if l == nil {
		return false
	}
	l.mu.Lock()
	p := l.peer
	l.mu.Unlock()
	return p != nil && p.Send(v) == nil
}

// ConnClosed detaches the connection.
func (e *Engine) ConnClosed(c Conn, connID string) {
	if h, ok := c.Value(handleKey{}).(*Handle); ok {
		e.Detach(h, c, connID)
	}
}

// TimeMsg is the server's clock as pushed to the page.
type TimeMsg struct {
	Type      string          `json:"type"`
	ID        json.RawMessage `json:"id,omitempty"`
	ServerNow time.Time       `json:"server_now"`
	Deadline  *time.Time      `json:"deadline"`
}

// WarningMsg says how many minutes are left.
type WarningMsg struct {
	Type        string `json:"type"`
	MinutesLeft int    `json:"minutes_left"`
}

func (e *Engine) timeMsg(h *Handle, id json.RawMessage) TimeMsg {
	_, deadline, _ := h.l.snapshot()
	m := TimeMsg{Type: "time", ID: id, ServerNow: e.now()}
	if !deadline.IsZero() {
		m.Deadline = &deadline
	}
	return m
}

func (e *Engine) clock(c Conn, h *Handle) {
	ctx := c.Context()
	warned := map[int]bool{}
	sync := time.NewTicker(TimeSyncEvery)
	defer sync.Stop()
	c.Send(e.timeMsg(h, nil))
	for {
		status, deadline, changed := h.l.snapshot()
		var timer *time.Timer
		var next <-chan time.Time
		if status == StatusInProgress {
			left := deadline.Sub(e.now())
			// Thresholds already crossed (on connecting late, or after a
			// credit) give one warning, for the most urgent of them.
			crossed := 0
			for _, m := range warnAt {
				if !warned[m] && left <= time.Duration(m)*time.Minute {
					warned[m], crossed = true, m
				}
			}
			if crossed > 0 {
				c.Send(WarningMsg{"warning", crossed})
			}
			for _, m := range warnAt {
				if !warned[m] {
					timer = time.NewTimer(left - time.Duration(m)*time.Minute)
					next = timer.C
					break
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-sync.C:
			c.Send(e.timeMsg(h, nil))
		case <-changed:
			c.Send(e.timeMsg(h, nil))
		case <-next:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// Messages are the handlers of the candidate's socket, by message type.
func (e *Engine) Messages() map[string]MessageFunc {
	handle := func(c Conn) *Handle { return c.Value(handleKey{}).(*Handle) }
	return map[string]MessageFunc{
		"resume": func(ctx context.Context, c Conn, id json.RawMessage, _ *int64, _ []byte) error {
			r, err := e.Resume(ctx, handle(c))
			if err != nil {
				return err
			}
			r.ID = id
			return c.Send(r)
		},
		"start": func(ctx context.Context, c Conn, id json.RawMessage, _ *int64, _ []byte) error {
			h := handle(c)
			if err := e.Start(ctx, h); err != nil {
				return err
			}
			r, err := e.Resume(ctx, h)
			if err != nil {
				return err
			}
			r.ID = id
			return c.Send(r)
		},
		"answer": func(ctx context.Context, c Conn, _ json.RawMessage, seq *int64, raw []byte) error {
			var m struct {
				Question int64 `json:"question"`
				Value    []int `json:"value"`
			}
			if err := json.Unmarshal(raw, &m); err != nil || seq == nil {
				return fmt.Errorf("%w: answer needs seq, question and value", ErrBadValue)
			}
			s := *seq
			e.Answer(handle(c), s, m.Question, m.Value, ackFunc(c, s))
			return nil
		},
		"mark": func(ctx context.Context, c Conn, _ json.RawMessage, seq *int64, raw []byte) error {
			var m struct {
				Question int64 `json:"question"`
				Marked   bool  `json:"marked"`
			}
			if err := json.Unmarshal(raw, &m); err != nil || seq == nil {
				return fmt.Errorf("%w: mark needs seq, question and marked", ErrBadValue)
			}
			s := *seq
			e.Mark(handle(c), s, m.Question, m.Marked, ackFunc(c, s))
			return nil
		},
		"submit": func(ctx context.Context, c Conn, id json.RawMessage, _ *int64, _ []byte) error {
			if err := e.Submit(ctx, handle(c)); err != nil {
				return err
			}
			return c.Send(map[string]any{"type": "ack", "id": id})
		},
		"time": func(ctx context.Context, c Conn, id json.RawMessage, _ *int64, _ []byte) error {
			return c.Send(e.timeMsg(handle(c), id))
		},
	}
}

// ErrorSender sends an error reply for a message; the web layer provides it
// so the engine does not format client errors itself.
type ErrorSender interface {
	SendError(seq int64, err error)
}

// ackFunc acknowledges a sequence number once its message is durable, or
// sends the reason it was refused.
func ackFunc(c Conn, seq int64) func(error) {
	return func(err error) {
		if err == nil {
			c.Send(map[string]any{"type": "ack", "seq": seq})
			return
		}
		if es, ok := c.(ErrorSender); ok {
			es.SendError(seq, err)
		} else {
			c.Send(map[string]any{"type": "error", "seq": seq, "code": "unavailable"})
		}
		if errors.Is(err, store.ErrNotOwner) {
			c.Close("moved", "") // the device goes on at the room's new owner
		}
	}
}

// Room names the room where an attempt's devices meet (the PC page, the
// phone, their invigilators' consoles): its seat's room, or a room of its
// own for an attempt with no seat (a mock test). candidateID, when not 0,
// must be the attempt's candidate.
func (e *Engine) Room(ctx context.Context, candidateID, attemptID int64) (string, error) {
	var row struct {
		ID     int64
		RoomID *int64
	}
	q := e.db.WithContext(ctx).Table("attempts").Select("attempts.id, seats.room_id").
		Joins("LEFT JOIN seats ON seats.id = attempts.seat_id").Where("attempts.id = ?", attemptID)
	if candidateID != 0 {
		q = q.Where("attempts.candidate_id = ?", candidateID)
	}
	if err := q.Take(&row).Error; errors.Is(err, gorm.ErrRecordNotFound) {
		return "", ErrNoAttempt
	} else if err != nil {
		return "", err
	}
	if row.RoomID == nil {
		return store.AttemptRoomKey(attemptID), nil
	}
	return store.RoomKey(*row.RoomID), nil
}

// RoomOfOpen is Room for a socket's query (?attempt=ID).
func (e *Engine) RoomOfOpen(ctx context.Context, candidateID int64, attempt string) (string, error) {
	id, _, err := parseOpen(attempt, "")
	if err != nil {
		return "", err
	}
	return e.Room(ctx, candidateID, id)
}
