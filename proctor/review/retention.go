package review

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/examhall/examhall/store"
)

// DefaultRetentionDays is how long recordings are kept after an attempt's
// result became final, unless configured otherwise; the exam rules tell
// candidates this figure.
const DefaultRetentionDays = 90

// Expired lists the recordings that the retention rule lets go: those of
// attempts whose result became final (a review decision) more than days
// ago. Attempts without a decision are still under review and keep theirs.
func (rv *Reviews) Expired(ctx context.Context, days int, now time.Time) ([]store.Recording, error) {
	var recs []store.Recording
	err := rv.db.WithContext(ctx).Table("recordings").
		Joins("JOIN attempt_reviews ON attempt_reviews.attempt_id = recordings.attempt_id").
		Where("attempt_reviews.decided_at < ? AND recordings.state <> ?", now.AddDate(0, 0, -days).UTC(), "deleted").
		Select("recordings.*").Order("recordings.id").Find(&recs).Error
	return recs, err
}

// ErrNeedBlobs means recordings to delete are in object storage, and the
// purge was not given it.
var ErrNeedBlobs = errors.New("recordings to delete are in object storage: give --blob-store and its credentials")

// Purge deletes the expired recordings' files (on this disk, or their
// objects in blobs), marks their rows deleted (the row stays, so the record
// says what existed and when it went) and audits each deletion.
func (rv *Reviews) Purge(ctx context.Context, blobs store.Blobs, recs []store.Recording, now time.Time) (int, error) {
	n := 0
	for _, r := range recs {
		if r.BlobKey != "" {
			if blobs == nil {
				return n, ErrNeedBlobs
			}
			if err := blobs.Delete(ctx, r.BlobKey); err != nil {
				return n, err
			}
		}
		if err := os.Remove(r.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, err
		}
		if err := rv.db.WithContext(ctx).Model(&store.Recording{}).Where("id = ?", r.ID).Update("state", "deleted").Error; err != nil {
			return n, err
		}
		d, _ := json.Marshal(map[string]any{"attempt": r.AttemptID, "device": r.Device, "path": r.Path, "size_bytes": r.SizeBytes})
		if err := rv.db.WithContext(ctx).Create(&store.AuditEvent{At: now.UTC(), Action: "recording_deleted", ObjectType: "recording",
			ObjectID: strconv.FormatInt(r.ID, 10), Detail: string(d)}).Error; err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
