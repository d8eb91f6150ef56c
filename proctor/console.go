package proctor

import (
	"context"
	"encoding/json"
	"time"

	"github.com/examhall/examhall/store"
)

// ConsoleRefresh is how often a console gets a fresh room snapshot
// (progress, time left, presence); flags arrive as they are raised.
const ConsoleRefresh = 5 * time.Second

// Console is one invigilator's live view of a room, as the web layer
// carries it: the messages it is sent, and the candidates whose cameras it
// may see (the media viewer's allow-list).
type Console interface {
	Send(v any) error
	Watch(attempts []int64)
}

// Readiness says where candidates not yet started stand before the exam
// (the exam engine's readiness, passed in so proctor need not import exam).
type Readiness func(ctx context.Context, attempts []int64) (any, error)

// Feed feeds one console until ctx ends or the room can no longer be
// watched by u: a snapshot now and every ConsoleRefresh, and each flag,
// presence change and acknowledgement of the room's candidates that u may
// see, as it happens. Candidates not yet started come with their
// readiness, for the pre-exam view. The time from a signal to its new flag
// on a console is the latency metric.
func (s *Service) Feed(ctx context.Context, u *store.User, room int64, readiness Readiness, out Console) error {
	flags, err := s.bus.Subscribe(ctx, FlagTopic)
	if err != nil {
		return err
	}
	defer flags.Close()
	activity, err := s.bus.Subscribe(ctx, ActivityTopic)
	if err != nil {
		return err
	}
	defer activity.Close()
	mine, err := s.snapshot(ctx, u, room, readiness, out)
	if err != nil {
		return err
	}
	t := time.NewTicker(ConsoleRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if mine, err = s.snapshot(ctx, u, room, readiness, out); err != nil {
				return err
			}
		case m, ok := <-flags.C:
			if !ok {
				return store.ErrBusClosed
			}
			var ev FlagEvent
			if json.Unmarshal(m.Data, &ev) != nil || !mine[ev.Flag.AttemptID] {
				continue
			}
			if out.Send(map[string]any{"type": "flag", "flag": ev.Flag, "new": ev.New}) == nil && ev.New {
				s.ObserveLatency(time.Since(ev.Received))
			}
		case m, ok := <-activity.C:
			if !ok {
				return store.ErrBusClosed
			}
			var a Activity
			if json.Unmarshal(m.Data, &a) != nil || !mine[a.AttemptID] {
				continue
			}
			out.Send(map[string]any{"type": "activity", "activity": a})
		}
	}
}

// snapshot sends the room as u may see it, with the readiness of those not
// yet started, lets the console's video follow it, and returns the
// attempts it holds.
func (s *Service) snapshot(ctx context.Context, u *store.User, room int64, readiness Readiness, out Console) (map[int64]bool, error) {
	v, err := s.Room(ctx, u, room)
	if err != nil {
		return nil, err
	}
	mine := map[int64]bool{}
	ids := make([]int64, 0, len(v.Candidates))
	var waiting []int64
	for _, c := range v.Candidates {
		mine[c.AttemptID] = true
		ids = append(ids, c.AttemptID)
		if c.Status == "not_started" {
			waiting = append(waiting, c.AttemptID)
		}
	}
	ready, err := readiness(ctx, waiting)
	if err != nil {
		s.log.Warn("console readiness", "err", err)
	}
	out.Watch(ids)
	out.Send(map[string]any{"type": "room", "room": v, "readiness": ready})
	return mine, nil
}
