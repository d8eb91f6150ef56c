// Package review is the replay of a finished attempt: its two cameras laid
// out on one clock, with the gaps between connections shown as gaps.
package review

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/examhall/examhall/store"
	"gorm.io/gorm"
)

// Segment is one recording placed on the attempt's clock.
type Segment struct {
	RecordingID int64  `json:"recording_id"`
	Device      string `json:"device"`
	// Start and End are offsets from the attempt's clock origin, in ms.
	Start int64 `json:"start_ms"`
	End   int64 `json:"end_ms"`
	// GapBefore is the time since the device's previous segment ended: a
	// technical interruption (a reconnection), 0 for the first segment.
	GapBefore int64 `json:"gap_before_ms"`
}

// Timeline is both devices' recordings on one clock.
type Timeline struct {
	// Origin is the wall-clock time of offset 0: the earliest recording start.
	Origin   time.Time `json:"origin"`
	Duration int64     `json:"duration_ms"`
	Segments []Segment `json:"segments"`
}

// minGap is the shortest break between two files of a device shown as a
// gap; files that roll over back to back are continuous.
const minGap = 500 * time.Millisecond

// Build lays out recordings by their wall-clock start and end. Recordings
// still being written (no end) are left out.
func Build(recs []store.Recording) Timeline {
	var done []store.Recording
	for _, r := range recs {
		if r.EndedAt != nil && r.EndedAt.After(r.StartedAt) {
			done = append(done, r)
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].StartedAt.Before(done[j].StartedAt) })
	t := Timeline{Segments: []Segment{}}
	if len(done) == 0 {
		return t
	}
	t.Origin = done[0].StartedAt
	lastEnd := map[string]time.Time{}
	for _, r := range done {
		s := Segment{RecordingID: r.ID, Device: r.Device, Start: r.StartedAt.Sub(t.Origin).Milliseconds(), End: r.EndedAt.Sub(t.Origin).Milliseconds()}
		if prev, ok := lastEnd[r.Device]; ok && r.StartedAt.Sub(prev) >= minGap {
			s.GapBefore = r.StartedAt.Sub(prev).Milliseconds()
		}
		lastEnd[r.Device] = *r.EndedAt
		t.Segments = append(t.Segments, s)
		t.Duration = max(t.Duration, s.End)
	}
	return t
}

// At finds what a device shows at an offset: the segment and the position
// in its file, or ok=false in a gap.
func (t Timeline) At(device string, offset int64) (seg Segment, pos int64, ok bool) {
	for _, s := range t.Segments {
		if s.Device == device && offset >= s.Start && offset < s.End {
			return s, offset - s.Start, true
		}
	}
	return Segment{}, 0, false
}

// Recordings lists an attempt's recording segments in time order, for its
// timeline.
func (rv *Reviews) Recordings(ctx context.Context, attemptID int64) ([]store.Recording, error) {
	var recs []store.Recording
	err := rv.db.WithContext(ctx).Where("attempt_id = ?", attemptID).Order("started_at").Find(&recs).Error
	return recs, err
}

// Recording is one recording segment (store.ErrNotFound if none).
func (rv *Reviews) Recording(ctx context.Context, id int64) (store.Recording, error) {
	var rec store.Recording
	err := rv.db.WithContext(ctx).Take(&rec, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return rec, store.ErrNotFound
	}
	return rec, err
}

// Outcome is an attempt's state and result, for the review page and the
// incident report (store.ErrNotFound if none).
func (rv *Reviews) Outcome(ctx context.Context, attemptID int64) (store.Attempt, error) {
	var at store.Attempt
	err := rv.db.WithContext(ctx).Select("id, status, score, passed, started_at, ended_at, end_reason").Take(&at, attemptID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return at, store.ErrNotFound
	}
	return at, err
}
