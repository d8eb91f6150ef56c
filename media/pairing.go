package media

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	qrcode "github.com/skip2/go-qrcode"
	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// PairingTTL is how long a pairing link works.
const PairingTTL = 10 * time.Minute

// Pairing errors.
var (
	ErrPairingUnknown = store.NewError("media", store.NotFound, "pairing_unknown", "this pairing link is not valid")
	ErrPairingUsed    = store.NewError("media", store.Conflict, "pairing_used", "this pairing link was used already")
	ErrPairingExpired = store.NewError("media", store.Gone, "pairing_expired", "this pairing link has expired")
	ErrDeviceRevoked  = store.NewError("media", store.Forbidden, "device_revoked", "another phone was paired since; this one no longer sends")
	ErrAttemptOver    = store.NewError("media", store.Conflict, "attempt_ended", "the attempt has ended; its cameras are no longer taken")
)

// checkOpen refuses an attempt that has ended (or does not exist): no
// camera is published, no phone paired or reconnected for it, so a phone's
// device key expires with its attempt.
func checkOpen(ctx context.Context, db *store.DB, attemptID int64) error {
	if db == nil {
		return nil
	}
	var a store.Attempt
	if err := db.WithContext(ctx).Select("status").Where("id = ?", attemptID).Take(&a).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrAttemptOver
		}
		return err
	}
	if a.Status != "not_started" && a.Status != "in_progress" {
		return ErrAttemptOver
	}
	return nil
}

func hashKey(k string) string {
	h := sha256.Sum256([]byte(k))
	return hex.EncodeToString(h[:])
}

// Pair makes a single-use pairing link for an attempt's phone and its QR
// code (a PNG data URL). base is the URL the phone reaches the server at.
func (s *Service) Pair(ctx context.Context, attemptID int64, base string, now time.Time) (link, qr string, err error) {
	if err := checkOpen(ctx, s.cfg.DB, attemptID); err != nil {
		return "", "", err
	}
	token := rand.Text()
	row := &store.PhonePairing{AttemptID: attemptID, TokenHash: hashKey(token), CreatedAt: now.UTC(), ExpiresAt: now.Add(PairingTTL).UTC()}
	if err := s.cfg.DB.WithContext(ctx).Create(row).Error; err != nil {
		return "", "", err
	}
	link = base + "/phone?t=" + token
	png, err := qrcode.Encode(link, qrcode.Medium, 320)
	if err != nil {
		return "", "", err
	}
	return link, "data:image/png;base64," + base64.StdEncoding.EncodeToString(png), nil
}

// Redeem uses a pairing link once: it returns the attempt and a device key
// the phone keeps to reconnect. Phones paired before for the attempt are
// revoked: one phone per candidate.
func (s *Service) Redeem(ctx context.Context, token string, now time.Time) (int64, string, error) {
	key := rand.Text()
	var attempt int64
	err := s.cfg.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var p store.PhonePairing
		if err := tx.Where("token_hash = ?", hashKey(token)).Take(&p).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrPairingUnknown
			}
			return err
		}
		switch {
		case p.UsedAt != nil:
			return ErrPairingUsed
		case now.After(p.ExpiresAt):
			return ErrPairingExpired
		}
		h := hashKey(key)
		res := tx.Model(&store.PhonePairing{}).Where("id = ? AND used_at IS NULL", p.ID).Updates(map[string]any{"used_at": now.UTC(), "device_key_hash": h})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrPairingUsed
		}
		attempt = p.AttemptID
		if err := checkOpen(ctx, &store.DB{DB: tx}, attempt); err != nil {
			return err
		}
		return tx.Model(&store.PhonePairing{}).Where("attempt_id = ? AND id <> ? AND device_key_hash IS NOT NULL AND revoked_at IS NULL", p.AttemptID, p.ID).
			Update("revoked_at", now.UTC()).Error
	})
	return attempt, key, err
}

// Device finds the attempt of a paired phone by its device key.
func (s *Service) Device(ctx context.Context, key string) (int64, error) {
	var p store.PhonePairing
	if err := s.cfg.DB.WithContext(ctx).Where("device_key_hash = ?", hashKey(key)).Take(&p).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return 0, ErrPairingUnknown
		}
		return 0, err
	}
	if p.RevokedAt != nil {
		return 0, ErrDeviceRevoked
	}
	if err := checkOpen(ctx, s.cfg.DB, p.AttemptID); err != nil {
		return 0, err
	}
	return p.AttemptID, nil
}

// PhoneAttempt finds the attempt a phone's socket is for, from its pairing
// link's token (not used up: Redeem does that on the room's owner) or its
// device key, with the same refusals as Redeem and Device.
func (s *Service) PhoneAttempt(ctx context.Context, token, key string, now time.Time) (int64, error) {
	if token == "" {
		return s.Device(ctx, key)
	}
	var p store.PhonePairing
	if err := s.cfg.DB.WithContext(ctx).Where("token_hash = ?", hashKey(token)).Take(&p).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return 0, ErrPairingUnknown
		}
		return 0, err
	}
	switch {
	case p.UsedAt != nil:
		return 0, ErrPairingUsed
	case now.After(p.ExpiresAt):
		return 0, ErrPairingExpired
	}
	return p.AttemptID, checkOpen(ctx, s.cfg.DB, p.AttemptID)
}
