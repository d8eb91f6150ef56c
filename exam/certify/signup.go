package certify

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"

	"github.com/examhall/examhall/exam/accounts"
	"github.com/examhall/examhall/store"
)

// SignUp is what a person states to open a candidate account from the
// public site.
type SignUp struct {
	Name     string
	IDNumber string
	// Email and Mobile are where notices reach the person (optional).
	Email, Mobile string
	// IP is the address the request came from, for the audit log.
	IP string
}

// SignUpAccount opens a candidate account for a person who has none: the
// name is required, the ID number must pass its checksum and not belong to
// an account or a registration already (then the person should log in).
// The ID number becomes the account's login name. hash is called only once
// the request is valid, to hash the chosen password (the web layer knows
// how). The account is audited.
func (s *Service) SignUpAccount(ctx context.Context, in SignUp, hash func() (string, error)) (*store.User, error) {
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return nil, ErrMissingField
	}
	id, err := CheckIDNumber(in.IDNumber)
	if err != nil {
		return nil, err
	}
	email, mobile := strings.TrimSpace(in.Email), strings.TrimSpace(in.Mobile)
	if err := accounts.CheckContact(email, mobile); err != nil {
		return nil, err
	}
	taken := func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&store.User{}).Where("username = ?", id).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			if err := tx.Model(&store.Registration{}).Where("id_number = ?", id).Count(&n).Error; err != nil {
				return err
			}
		}
		if n > 0 {
			return ErrIDRegistered
		}
		return nil
	}
	// Refuse a known number before spending a password hash on it.
	if err := taken(s.db.DB.WithContext(ctx)); err != nil {
		return nil, err
	}
	h, err := hash()
	if err != nil {
		return nil, err
	}
	u := &store.User{Role: store.RoleCandidate, Username: id, PasswordHash: h, DisplayName: name, Email: email, Mobile: mobile, CreatedAt: s.now()}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := taken(tx); err != nil {
			return err
		}
		if err := tx.Create(u).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) || errors.Is(err, store.ErrConflict) {
				return ErrIDRegistered
			}
			return err
		}
		return tx.Create(&store.AuditEvent{At: s.now(), ActorID: &u.ID, Action: "signed_up", ObjectType: "user",
			ObjectID: strconv.FormatInt(u.ID, 10), IP: in.IP, Detail: `{}`}).Error
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}
