package certify

import (
	"context"
	"time"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

// FeeView is one entry of the ledger.
type FeeView struct {
	ID          int64      `json:"id"`
	Item        string     `json:"item"`
	Component   string     `json:"component,omitempty"`
	AmountCents int64      `json:"amount_cents"`
	PaidAt      *time.Time `json:"paid_at"`
	Method      string     `json:"method,omitempty"`
	Reference   string     `json:"reference,omitempty"`
}

// SittingView is one sitting of a component on the path.
type SittingView struct {
	ID           int64      `json:"id"`
	N            int        `json:"n"`
	Paid         bool       `json:"paid"`
	SessionTitle string     `json:"session_title,omitempty"`
	StartsAt     *time.Time `json:"starts_at,omitempty"`
	Ticket       string     `json:"ticket,omitempty"`
	AttemptID    int64      `json:"attempt_id,omitempty"`
	FileName     string     `json:"file_name,omitempty"`
	SubmittedAt  *time.Time `json:"submitted_at,omitempty"`
	Deadline     *time.Time `json:"deadline,omitempty"`
	DefenceAt    *time.Time `json:"defence_at,omitempty"`
	Score        *float64   `json:"score"`
	Passed       *bool      `json:"passed"`
}

// ComponentView is a component's state on the path.
type ComponentView struct {
	Component   string        `json:"component"`
	State       string        `json:"state"`
	RetakesLeft int           `json:"retakes_left"`
	Sittings    []SittingView `json:"sittings"`
}

// CertificateView is the certificate on the path.
type CertificateView struct {
	Number   string    `json:"number"`
	Code     string    `json:"code"`
	IssuedAt time.Time `json:"issued_at"`
	Status   string    `json:"status"`
}

// RegistrationView is one registration with everything on its path.
type RegistrationView struct {
	ID            int64            `json:"id"`
	CandidateID   int64            `json:"candidate_id"`
	LevelID       int64            `json:"level_id"`
	LevelCode     string           `json:"level_code"`
	LevelZh       string           `json:"level_zh"`
	LevelEn       string           `json:"level_en"`
	Name          string           `json:"name"`
	IDNumber      string           `json:"id_number"`
	Education     string           `json:"education"`
	TrainingHours int              `json:"training_hours"`
	Organisation  string           `json:"organisation"`
	Status        string           `json:"status"`
	CreatedAt     time.Time        `json:"created_at"`
	Fees          []FeeView        `json:"fees"`
	OwedCents     int64            `json:"owed_cents"`
	Components    []ComponentView  `json:"components"`
	Certificate   *CertificateView `json:"certificate"`
	// RegisterAgain is true when a retake failed: the candidate must
	// register again.
	RegisterAgain bool `json:"register_again"`
}

// Path lists a candidate's registrations, newest first, settled.
func (s *Service) Path(ctx context.Context, candidateID int64) ([]RegistrationView, error) {
	return s.list(ctx, "candidate_id = ?", candidateID)
}

// Registrations lists the newest registrations (for admins), settled.
func (s *Service) Registrations(ctx context.Context) ([]RegistrationView, error) {
	return s.list(ctx, "1 = 1")
}

func (s *Service) list(ctx context.Context, where string, args ...any) ([]RegistrationView, error) {
	var regs []store.Registration
	if err := s.db.WithContext(ctx).Where(where, args...).Order("id DESC").Limit(500).Find(&regs).Error; err != nil {
		return nil, err
	}
	stale, err := s.unsettled(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RegistrationView, 0, len(regs))
	for _, r := range regs {
		if r.Status == RegOpen && stale[r.ID] {
			if _, err := s.Settle(ctx, r.ID); err != nil {
				return nil, err
			}
		}
		v, err := s.view(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, *v)
	}
	return out, nil
}

// unsettled finds the open registrations whose theory result changed
// since they were last settled: an ended, graded attempt not yet recorded,
// or a recorded pass since ruled invalid by review. Settling takes the
// write lock, so a list settles only these.
func (s *Service) unsettled(ctx context.Context) (map[int64]bool, error) {
	var ids []int64
	err := s.db.WithContext(ctx).Table("sittings").Distinct("sittings.registration_id").
		Joins("JOIN registrations ON registrations.id = sittings.registration_id").
		Joins("JOIN attempts ON attempts.seat_id = sittings.seat_id").
		Joins("LEFT JOIN attempt_reviews ON attempt_reviews.attempt_id = attempts.id").
		Where("registrations.status = ? AND sittings.component = ? AND attempts.status IN ? AND attempts.passed IS NOT NULL", RegOpen, string(exam.Theory), endedStatuses).
		Where("sittings.passed IS NULL OR (sittings.passed = ? AND attempt_reviews.decision = ?)", true, "invalid").
		Pluck("sittings.registration_id", &ids).Error
	out := map[int64]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out, err
}

func (s *Service) view(ctx context.Context, regID int64) (*RegistrationView, error) {
	db := s.db.WithContext(ctx)
	var r store.Registration
	if err := db.Take(&r, regID).Error; err != nil {
		return nil, err
	}
	lv, err := s.level(ctx, db, r.LevelID)
	if err != nil {
		return nil, err
	}
	v := &RegistrationView{ID: r.ID, CandidateID: r.CandidateID, LevelID: r.LevelID, LevelCode: lv.row.Code, LevelZh: lv.row.NameZh, LevelEn: lv.row.NameEn,
		Name: r.Name, IDNumber: r.IDNumber, Education: r.Education, TrainingHours: r.TrainingHours, Organisation: r.Organisation,
		Status: r.Status, CreatedAt: r.CreatedAt, Fees: []FeeView{}, RegisterAgain: r.Status == RegClosed}
	var fees []store.Fee
	if err := db.Where("registration_id = ?", r.ID).Order("id").Find(&fees).Error; err != nil {
		return nil, err
	}
	paidFee := map[int64]bool{}
	for _, f := range fees {
		v.Fees = append(v.Fees, FeeView{f.ID, f.Item, f.Component, f.AmountCents, f.PaidAt, f.Method, f.Reference})
		if f.PaidAt == nil {
			v.OwedCents += f.AmountCents
		}
		paidFee[f.ID] = f.PaidAt != nil
	}
	var sittings []store.Sitting
	if err := db.Where("registration_id = ?", r.ID).Order("n").Find(&sittings).Error; err != nil {
		return nil, err
	}
	for _, c := range regComponents(lv, sittings) {
		cv := ComponentView{Component: string(c), Sittings: []SittingView{}}
		var outcomes []Outcome
		for i := range sittings {
			st := &sittings[i]
			if st.Component != string(c) {
				continue
			}
			outcomes = append(outcomes, outcome(st))
			sv := SittingView{ID: st.ID, N: st.N, Paid: st.FeeID == nil || paidFee[*st.FeeID], FileName: st.FileName, SubmittedAt: st.SubmittedAt,
				DefenceAt: st.DefenceAt, Score: st.Score, Passed: st.Passed}
			if st.OpenedAt != nil && c != exam.Theory {
				d := SubmissionDeadline(lv.policy, *st.OpenedAt)
				sv.Deadline = &d
			}
			if st.SeatID != nil {
				var seat store.Seat
				var sess store.ExamSession
				if db.Take(&seat, *st.SeatID).Error == nil && db.Take(&sess, seat.SessionID).Error == nil {
					sv.SessionTitle, sv.StartsAt, sv.Ticket = sess.Title, &sess.StartsAt, seat.Ticket
				}
				var a store.Attempt
				if db.Where("seat_id = ?", *st.SeatID).Take(&a).Error == nil {
					sv.AttemptID = a.ID
				}
			}
			cv.Sittings = append(cv.Sittings, sv)
		}
		cv.State, cv.RetakesLeft = ComponentState(lv.policy, outcomes)
		v.Components = append(v.Components, cv)
	}
	if c, err := certificateOf(db, r.ID); err != nil {
		return nil, err
	} else if c != nil {
		v.Certificate = &CertificateView{Number: c.Number, Code: c.Code, IssuedAt: c.IssuedAt, Status: Valid}
		if c.RevokedAt != nil {
			v.Certificate.Status = Revoked
		}
	}
	return v, nil
}

// LevelView is a level open for registration.
type LevelView struct {
	ID            int64    `json:"id"`
	ProgrammeID   int64    `json:"programme_id"`
	Programme     string   `json:"programme"`
	Code          string   `json:"code"`
	NameZh        string   `json:"name_zh"`
	NameEn        string   `json:"name_en"`
	TrainingHours int      `json:"training_hours"`
	FeeCents      int64    `json:"fee_cents"`
	Components    []string `json:"components"`
	MinEducation  string   `json:"min_education"`
}

// Levels lists every level of every programme, with its rules.
func (s *Service) Levels(ctx context.Context) ([]LevelView, error) {
	var rows []store.Level
	if err := s.db.WithContext(ctx).Order("programme_id, rank").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := []LevelView{}
	for _, r := range rows {
		lv, err := s.level(ctx, s.db.DB, r.ID)
		if err != nil {
			return nil, err
		}
		comps := make([]string, len(lv.spec.Components))
		for i, c := range lv.spec.Components {
			comps[i] = string(c)
		}
		out = append(out, LevelView{r.ID, r.ProgrammeID, lv.prog.NameZh, r.Code, r.NameZh, r.NameEn, r.TrainingHours,
			Fee(lv.policy, lv.spec, ItemRegistration), comps, lv.policy.MinEducation})
	}
	return out, nil
}

// PanelAccount is a panel member's account, for the admin's panel forms.
type PanelAccount struct {
	ID           int64  `json:"id"`
	Username     string `json:"username"`
	DisplayName  string `json:"display_name"`
	Organisation string `json:"organisation"`
}

// PanelMembers lists the active panel members with their organisations.
func (s *Service) PanelMembers(ctx context.Context) ([]PanelAccount, error) {
	var out []PanelAccount
	err := s.db.WithContext(ctx).Table("users").Select("users.id, users.username, users.display_name, COALESCE(affiliations.organisation, '') AS organisation").
		Joins("LEFT JOIN affiliations ON affiliations.user_id = users.id").Where("users.role = ? AND NOT users.disabled", store.RolePanel).
		Order("users.id").Scan(&out).Error
	return out, err
}
