package proctor

import (
	"context"

	"github.com/examhall/examhall/store"
)

// Recordings lists an attempt's recording segments to u, who must be
// allowed to watch them (MayWatch).
func (s *Service) Recordings(ctx context.Context, u *store.User, attemptID int64) ([]store.Recording, error) {
	if err := s.MayWatch(ctx, u, attemptID); err != nil {
		return nil, err
	}
	return s.reviews.Recordings(ctx, attemptID)
}

// WatchRecording gives u a recording segment to play, if u may watch its
// attempt. A viewing from the start (not a seek within one) is audited.
func (s *Service) WatchRecording(ctx context.Context, u *store.User, id int64, fromStart bool) (store.Recording, error) {
	rec, err := s.reviews.Recording(ctx, id)
	if err != nil {
		return rec, err
	}
	if err := s.MayWatch(ctx, u, rec.AttemptID); err != nil {
		return store.Recording{}, err
	}
	if fromStart {
		err = s.audit(s.db.WithContext(ctx), u.ID, "recording_viewed", "recording", rec.ID, map[string]any{"attempt": rec.AttemptID, "device": rec.Device})
	}
	return rec, err
}
