package proctor

import (
	"context"
	"strconv"
	"time"

	"github.com/examhall/examhall/proctor/review"
)

// Report is an attempt's incident report: who sat it where, how it went
// and ended, its flags, its events and the reviewer's decision. Times are
// RFC 3339 in UTC, the score as entered; empty where there is none.
type Report struct {
	Name, Ticket, Room, Status, EndReason string
	Started, Ended, Score                 string
	Decision, Reason                      string
	Flags                                 []FlagView
	Events                                []review.Event
}

// Reviews is the review of ended attempts, kept in the proctor's database.
func (s *Service) Reviews() *review.Reviews { return s.reviews }

// Report is the incident report of an attempt.
func (s *Service) Report(ctx context.Context, attemptID int64) (*Report, error) {
	info, err := s.Info(ctx, attemptID)
	if err != nil {
		return nil, err
	}
	at, err := s.reviews.Outcome(ctx, attemptID)
	if err != nil {
		return nil, err
	}
	flags, err := s.Flags(ctx, attemptID)
	if err != nil {
		return nil, err
	}
	events, err := s.reviews.Events(ctx, attemptID)
	if err != nil {
		return nil, err
	}
	rep := &Report{Name: info.Name, Ticket: info.Ticket, Room: info.RoomName, Status: at.Status, EndReason: at.EndReason,
		Started: rfc3339(at.StartedAt), Ended: rfc3339(at.EndedAt), Flags: flags, Events: events}
	if at.Score != nil {
		rep.Score = strconv.FormatFloat(*at.Score, 'f', -1, 64)
	}
	d, err := s.reviews.Decision(ctx, attemptID)
	if err != nil {
		return nil, err
	}
	if d != nil {
		rep.Decision, rep.Reason = d.Decision, d.Reason
	}
	return rep, nil
}

func rfc3339(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
