package notify

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// newToken is a one-time link's secret: 32 random bytes, URL-safe.
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// makeLinks stores the one-time links a message asks for (only the
// token's store.LinkHash) and returns each link's URL by the parameter it
// fills, and the rows made.
func makeLinks(ctx context.Context, db *store.DB, m *store.OutboxMessage, links []store.NoticeLink, baseURL string, now time.Time) (map[string]string, []int64, error) {
	urls := map[string]string{}
	var ids []int64
	for _, l := range links {
		token := newToken()
		row := store.LoginLink{TokenHash: store.LinkHash(token), UserID: m.UserID, Target: l.Target, OutboxID: &m.ID,
			CreatedAt: now, ExpiresAt: l.ExpiresAt.UTC()}
		if err := db.WithContext(ctx).Create(&row).Error; err != nil {
			return nil, ids, err
		}
		ids = append(ids, row.ID)
		urls[l.Param] = baseURL + "/l/" + token
	}
	return urls, ids, nil
}

// Redeem uses up a one-time login link and returns it: the web layer then
// logs its user in (if the account is still enabled) and opens its Target.
// A link works once, until it expires; after that the person logs in with
// ticket number and password.
func Redeem(ctx context.Context, db *store.DB, token string, now time.Time) (store.LoginLink, error) {
	now = now.UTC()
	hash := store.LinkHash(token)
	res := db.WithContext(ctx).Model(&store.LoginLink{}).
		Where("token_hash = ? AND used_at IS NULL AND expires_at > ?", hash, now).Update("used_at", now)
	if res.Error != nil {
		return store.LoginLink{}, res.Error
	}
	var l store.LoginLink
	if err := db.WithContext(ctx).Where("token_hash = ?", hash).Take(&l).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return store.LoginLink{}, ErrLinkUnknown
		}
		return store.LoginLink{}, err
	}
	switch {
	case res.RowsAffected == 1:
		return l, nil
	case l.UsedAt != nil:
		return store.LoginLink{}, ErrLinkUsed
	default:
		return store.LoginLink{}, ErrLinkExpired
	}
}

// Check finds the link of a token without using it: ErrLinkUnknown,
// ErrLinkUsed or ErrLinkExpired when it can no longer log anyone in.
func Check(ctx context.Context, db *store.DB, token string, now time.Time) (store.LoginLink, error) {
	var l store.LoginLink
	err := db.WithContext(ctx).Where("token_hash = ?", store.LinkHash(token)).Take(&l).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return l, ErrLinkUnknown
	case err != nil:
		return l, err
	case l.UsedAt != nil:
		return l, ErrLinkUsed
	case !now.Before(l.ExpiresAt):
		return l, ErrLinkExpired
	}
	return l, nil
}
