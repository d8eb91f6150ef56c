package certify

import (
	"context"
	"time"

	"github.com/examhall/examhall/exam"
)

// Attention is a valid certificate whose ground has shifted since it was
// issued: a review ruled one of its theory attempts invalid. It is not
// revoked by itself; an admin looks and decides.
type Attention struct {
	Number         string    `json:"number"`
	RegistrationID int64     `json:"registration_id"`
	HolderName     string    `json:"holder_name"`
	LevelZh        string    `json:"level_zh"`
	LevelEn        string    `json:"level_en"`
	IssuedAt       time.Time `json:"issued_at"`
	AttemptID      int64     `json:"attempt_id"`
	RuledAt        time.Time `json:"ruled_at"`
	Reason         string    `json:"reason"`
}

// NeedsAttention lists the valid certificates whose passing theory attempt
// a review has since ruled invalid (a certificate is never issued over an
// invalid attempt, so the ruling came after), newest ruling first.
func (s *Service) NeedsAttention(ctx context.Context) ([]Attention, error) {
	out := []Attention{}
	err := s.db.WithContext(ctx).Table("certificates").
		Select(`certificates.number, certificates.registration_id, certificates.holder_name, levels.name_zh AS level_zh,
			levels.name_en AS level_en, certificates.issued_at, attempts.id AS attempt_id, attempt_reviews.decided_at AS ruled_at,
			attempt_reviews.reason`).
		Joins("JOIN levels ON levels.id = certificates.level_id").
		Joins("JOIN sittings ON sittings.registration_id = certificates.registration_id AND sittings.component = ?", string(exam.Theory)).
		Joins("JOIN attempts ON attempts.seat_id = sittings.seat_id").
		Joins("JOIN attempt_reviews ON attempt_reviews.attempt_id = attempts.id").
		// The sitting that passed theory (an earlier failed sitting's
		// attempt may well have been invalid: it did not count).
		Where("certificates.revoked_at IS NULL AND sittings.passed = ? AND attempt_reviews.decision = ?", true, "invalid").
		Order("attempt_reviews.decided_at DESC, certificates.id").
		Scan(&out).Error
	return out, err
}
