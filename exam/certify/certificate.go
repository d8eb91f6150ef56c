package certify

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// Certificate statuses.
const (
	Valid   = "valid"
	Revoked = "revoked"
)

// Verification is all a public certificate check shows.
type Verification struct {
	Number      string `json:"number"`
	Name        string `json:"name"` // masked
	ProgrammeZh string `json:"programme_zh"`
	ProgrammeEn string `json:"programme_en"`
	LevelZh     string `json:"level_zh"`
	LevelEn     string `json:"level_en"`
	IssuedOn    string `json:"issued_on"` // YYYY-MM-DD, China time
	Status      string `json:"status"`
}

// Verify checks a certificate by its number and one of the holder's name,
// ID number or the verification code printed on it. An unknown number and a
// mismatch get the same answer (not found), so numbers cannot be probed.
func (s *Service) Verify(ctx context.Context, number, name, idNumber, code string) (*Verification, error) {
	c, err := s.byNumber(ctx, number)
	if err != nil {
		return nil, err
	}
	name, idNumber, code = strings.TrimSpace(name), strings.ToUpper(strings.TrimSpace(idNumber)), strings.TrimSpace(code)
	match := (name != "" && name == c.HolderName) || (idNumber != "" && idNumber == c.IDNumber) || (code != "" && code == c.Code)
	if !match {
		return nil, store.ErrNotFound
	}
	var lv store.Level
	var prog store.Programme
	if err := s.db.WithContext(ctx).Take(&lv, c.LevelID).Error; err != nil {
		return nil, err
	}
	if err := s.db.WithContext(ctx).Take(&prog, lv.ProgrammeID).Error; err != nil {
		return nil, err
	}
	v := &Verification{Number: c.Number, Name: MaskName(c.HolderName), ProgrammeZh: prog.NameZh, ProgrammeEn: prog.NameEn,
		LevelZh: lv.NameZh, LevelEn: lv.NameEn, IssuedOn: c.IssuedAt.In(China).Format(time.DateOnly), Status: Valid}
	if c.RevokedAt != nil {
		v.Status = Revoked
	}
	return v, nil
}

func (s *Service) byNumber(ctx context.Context, number string) (*store.Certificate, error) {
	number = strings.ToUpper(strings.TrimSpace(number))
	if number == "" || len(number) > 64 {
		return nil, store.ErrNotFound
	}
	var c store.Certificate
	err := s.db.WithContext(ctx).Where("number = ?", number).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, store.ErrNotFound
	}
	return &c, err
}

// Revoke revokes a certificate with a reason (an admin action, audited).
func (s *Service) Revoke(ctx context.Context, actorID int64, number, reason string) error {
	if strings.TrimSpace(reason) == "" {
		return ErrReason
	}
	c, err := s.byNumber(ctx, number)
	if err != nil {
		return err
	}
	if c.RevokedAt != nil {
		return ErrRevoked
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := s.now()
		if err := tx.Model(c).Updates(map[string]any{"revoked_at": now, "revoke_reason": reason, "revoked_by": actorID}).Error; err != nil {
			return err
		}
		return audit(tx, now, actorID, "certificate_revoked", "certificate", c.ID, map[string]string{"number": c.Number, "reason": reason})
	})
}

// Printed is a certificate as printed: for its holder and admins.
type Printed struct {
	Number      string
	Code        string
	Name        string
	IDNumber    string // masked but for the first 6 and last 4
	ProgrammeZh string
	ProgrammeEn string
	Issuer      string
	LevelZh     string
	LevelEn     string
	IssuedOn    string
	Revoked     bool
}

// Print returns a certificate for its printable page; only its holder and
// admins may see it.
func (s *Service) Print(ctx context.Context, user *store.User, number string) (*Printed, error) {
	c, err := s.byNumber(ctx, number)
	if err != nil {
		return nil, err
	}
	var reg store.Registration
	var lv store.Level
	var prog store.Programme
	db := s.db.WithContext(ctx)
	if err := db.Take(&reg, c.RegistrationID).Error; err != nil {
		return nil, err
	}
	if user.Role != store.RoleAdmin && reg.CandidateID != user.ID {
		return nil, store.ErrNotFound
	}
	if err := db.Take(&lv, c.LevelID).Error; err != nil {
		return nil, err
	}
	if err := db.Take(&prog, lv.ProgrammeID).Error; err != nil {
		return nil, err
	}
	id := c.IDNumber
	if len(id) == 18 {
		id = id[:6] + strings.Repeat("*", 8) + id[14:]
	}
	return &Printed{Number: c.Number, Code: c.Code, Name: c.HolderName, IDNumber: id, ProgrammeZh: prog.NameZh, ProgrammeEn: prog.NameEn,
		Issuer: prog.Issuer, LevelZh: lv.NameZh, LevelEn: lv.NameEn, IssuedOn: c.IssuedAt.In(China).Format(time.DateOnly), Revoked: c.RevokedAt != nil}, nil
}
