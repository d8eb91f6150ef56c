package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// UserByUsername finds a staff or candidate account by its username.
func (db *DB) UserByUsername(ctx context.Context, username string) (*User, error) {
	var u User
	err := db.WithContext(ctx).Where("username = ?", username).Take(&u).Error
	return &u, translate(err)
}

// UserByID finds an account by id.
func (db *DB) UserByID(ctx context.Context, id int64) (*User, error) {
	var u User
	err := db.WithContext(ctx).Take(&u, id).Error
	return &u, translate(err)
}

// SeatByTicket finds a seat by its ticket number (准考证号) with its candidate.
func (db *DB) SeatByTicket(ctx context.Context, ticket string) (*Seat, *User, error) {
	var s Seat
	if err := db.WithContext(ctx).Where("ticket = ?", ticket).Take(&s).Error; err != nil {
		return nil, nil, translate(err)
	}
	u, err := db.UserByID(ctx, s.CandidateID)
	return &s, u, err
}

// CreateAuthSession stores a new login.
func (db *DB) CreateAuthSession(ctx context.Context, s *AuthSession) error {
	return translate(db.WithContext(ctx).Create(s).Error)
}

// AuthSessionByToken finds an unexpired login by the hash of its token, with
// its account; a disabled account has no valid session.
func (db *DB) AuthSessionByToken(ctx context.Context, tokenHash string, now time.Time) (*AuthSession, *User, error) {
	var s AuthSession
	err := db.WithContext(ctx).Where("token_hash = ? AND expires_at > ?", tokenHash, now).Take(&s).Error
	if err != nil {
		return nil, nil, translate(err)
	}
	u, err := db.UserByID(ctx, s.UserID)
	if err != nil {
		return nil, nil, err
	}
	if u.Disabled {
		return nil, nil, ErrNotFound
	}
	return &s, u, nil
}

// DeleteAuthSession ends a login.
func (db *DB) DeleteAuthSession(ctx context.Context, tokenHash string) error {
	return translate(db.WithContext(ctx).Where("token_hash = ?", tokenHash).Delete(&AuthSession{}).Error)
}

// DeleteExpiredAuthSessions removes logins that expired before now.
func (db *DB) DeleteExpiredAuthSessions(ctx context.Context, now time.Time) (int64, error) {
	res := db.WithContext(ctx).Where("expires_at <= ?", now).Delete(&AuthSession{})
	return res.RowsAffected, translate(res.Error)
}

type clientIPKey struct{}

// WithClientIP marks ctx as serving a request from ip: every audit event
// written under ctx records it, whichever domain writes it.
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP is the address WithClientIP put in ctx, or "".
func ClientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// BeforeCreate fills an audit event's address from the context it is
// written under (a GORM hook).
func (e *AuditEvent) BeforeCreate(tx *gorm.DB) error {
	if e.IP == "" && tx.Statement.Context != nil {
		e.IP = ClientIP(tx.Statement.Context)
	}
	return nil
}

// Audit appends an event to the audit log.
func (db *DB) Audit(ctx context.Context, e *AuditEvent) error {
	if e.At.IsZero() {
		e.At = time.Now().UTC()
	}
	if e.Detail == "" {
		e.Detail = "{}"
	}
	return translate(db.WithContext(ctx).Create(e).Error)
}

// AuditFor lists the audit events of one object, oldest first.
func (db *DB) AuditFor(ctx context.Context, objectType, objectID string) ([]AuditEvent, error) {
	var es []AuditEvent
	err := db.WithContext(ctx).Where("object_type = ? AND object_id = ?", objectType, objectID).Order("id").Find(&es).Error
	return es, translate(err)
}

// Setting returns the value stored under key.
func (db *DB) Setting(ctx context.Context, key string) (string, error) {
	var s Setting
	err := db.WithContext(ctx).Where("key = ?", key).Take(&s).Error
	return s.Value, translate(err)
}

// PutSetting stores value under key, replacing what was there.
func (db *DB) PutSetting(ctx context.Context, key, value string) error {
	return translate(db.WithContext(ctx).Clauses(clause.OnConflict{UpdateAll: true}).Create(&Setting{Key: key, Value: value}).Error)
}
