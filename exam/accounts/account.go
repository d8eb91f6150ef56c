package accounts

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// Login is a new account's username and password, told once.
type Login struct {
	UserID   int64  `json:"user_id"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// NewCandidate makes a candidate account for a registration made by
// an admin or an import: a 10-digit username and a generated password,
// returned once.
func NewCandidate(ctx context.Context, tx *gorm.DB, name string) (Login, error) {
	var b [10]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	b[0] = '8'
	pw := NewCandidatePassword()
	hash, err := HashPassword(pw, store.RoleCandidate, Generated)
	if err != nil {
		return Login{}, err
	}
	u := &store.User{Role: store.RoleCandidate, Username: string(b[:]), PasswordHash: hash, DisplayName: name, CreatedAt: time.Now().UTC()}
	if err := tx.WithContext(ctx).Create(u).Error; err != nil {
		return Login{}, err
	}
	return Login{UserID: u.ID, Username: u.Username, Password: pw}, nil
}

// ErrBadContact: an email address or mobile number that is not one.
var ErrBadContact = store.NewError("accounts", store.Invalid, "bad_contact", "an email address (name@example.org) or a mobile number of 6 to 15 digits, or empty")

// CheckContact checks where notifications are to reach a person: each may
// be empty (not by that channel).
func CheckContact(email, mobile string) error {
	if email != "" && !store.ValidAddress(store.ChannelEmail, email) || mobile != "" && !store.ValidAddress(store.ChannelSMS, mobile) {
		return ErrBadContact
	}
	return nil
}

// SetContact sets where a person's notifications go (each may be empty),
// audited as the admin's act in the same transaction.
func SetContact(ctx context.Context, db *store.DB, adminID, userID int64, email, mobile string) error {
	email, mobile = strings.TrimSpace(email), strings.TrimSpace(mobile)
	if err := CheckContact(email, mobile); err != nil {
		return err
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&store.User{}).Where("id = ?", userID).Updates(map[string]any{"email": email, "mobile": mobile})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return store.ErrNotFound
		}
		detail, _ := json.Marshal(map[string]string{"email": email, "mobile": mobile})
		return tx.Create(&store.AuditEvent{At: time.Now().UTC(), ActorID: &adminID, Action: "contact_set", ObjectType: "user",
			ObjectID: strconv.FormatInt(userID, 10), Detail: string(detail)}).Error
	})
}
