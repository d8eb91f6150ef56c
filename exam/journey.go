package exam

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// The candidate's steps before the exam, each recorded with its time (see
// readiness.go for the state machine they feed).

// RulesVersion names the text of the exam rules (考试须知) a candidate
// accepts. Change it with the text, so an acceptance says what was read.
const RulesVersion = "2026-11"

// SetupItems is the set-up checklist the candidate confirms after pairing
// the phone: the phone's placement and the room.
var SetupItems = []string{"placement", "alone", "desk", "charging", "awake", "calls", "alarms"}

// Errors of the steps before the exam.
var (
	ErrRulesChanged = store.NewError("exam", store.Conflict, "rules_changed", "the rules changed while the candidate read them")
	ErrPhoneFirst   = store.NewError("exam", store.Conflict, "phone_first", "the phone camera must be paired and sending first")
	ErrSetupItems   = store.NewError("exam", store.Invalid, "setup_items", "every item of the set-up checklist must be confirmed")
	ErrNoIdentity   = store.NewError("exam", store.NotFound, "no_identity", "no identity still has been taken")
)

// Owns checks that an attempt is the candidate's, without loading it.
func (e *Engine) Owns(ctx context.Context, candidateID, attemptID int64) error {
	var n int64
	err := e.db.WithContext(ctx).Model(&store.Attempt{}).Where("id = ? AND candidate_id = ?", attemptID, candidateID).Count(&n).Error
	if err == nil && n == 0 {
		return ErrNoAttempt
	}
	return err
}

// AcceptRules records that the candidate read and accepted the rules.
func (e *Engine) AcceptRules(ctx context.Context, attemptID int64, version string) error {
	if version != RulesVersion {
		return ErrRulesChanged
	}
	return e.RecordStep(ctx, attemptID, StepRules, map[string]string{"version": version})
}

// Identity is the still of a candidate's face beside their ID card.
type Identity struct {
	SHA256 string `json:"sha256"` // names the JPEG file
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// ErrBadStill: an identity still or registered photo that is no usable
// JPEG photo.
var ErrBadStill = store.NewError("exam", store.Invalid, "bad_still", "the identity still must be a JPEG photo of at least 320x240")

// Photos a candidate or an admin uploads are JPEGs of at most MaxPhoto
// bytes; an identity still is at least 320x240 so a face and an ID card
// can be made out.
const (
	MaxPhoto                      = 1 << 20
	minStillWidth, minStillHeight = 320, 240
)

// CheckIdentityStill judges an identity still before it is stored: a JPEG
// of at least 320x240. The caller names it by its content (SHA256).
func CheckIdentityStill(b []byte) (Identity, error) {
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width < minStillWidth || cfg.Height < minStillHeight {
		return Identity{}, ErrBadStill
	}
	return Identity{Width: cfg.Width, Height: cfg.Height}, nil
}

// CheckPhoto judges a registered photo before it is stored: a JPEG.
func CheckPhoto(b []byte) error {
	if _, err := jpeg.DecodeConfig(bytes.NewReader(b)); err != nil {
		return ErrBadStill
	}
	return nil
}

// RecordIdentity records the identity still (stored by the caller).
func (e *Engine) RecordIdentity(ctx context.Context, attemptID int64, id Identity) error {
	return e.RecordStep(ctx, attemptID, StepIdentity, id)
}

// IdentityOf is an attempt's identity still, if taken.
func (e *Engine) IdentityOf(ctx context.Context, attemptID int64) (Identity, error) {
	var row store.ReadinessStep
	err := e.db.WithContext(ctx).Where("attempt_id = ? AND step = ?", attemptID, string(StepIdentity)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Identity{}, ErrNoIdentity
	}
	if err != nil {
		return Identity{}, err
	}
	var id Identity
	err = json.Unmarshal([]byte(row.Detail), &id)
	return id, err
}

// RecordPhone records that the phone camera is paired and sending; live is
// what the media layer saw, since the page cannot vouch for it.
func (e *Engine) RecordPhone(ctx context.Context, attemptID int64, live bool) error {
	if !live {
		return ErrPhoneFirst
	}
	return e.RecordStep(ctx, attemptID, StepPhone, map[string]bool{"live": true})
}

// ConfirmSetup records the confirmed set-up checklist; every item must be
// there, and the phone must be paired first (the candidate checks its
// placement on its preview).
func (e *Engine) ConfirmSetup(ctx context.Context, attemptID int64, items []string) error {
	r, err := e.ReadinessOf(ctx, attemptID)
	if err != nil {
		return err
	}
	if !r.Done[StepPhone] {
		return ErrPhoneFirst
	}
	var missing []string
	for _, it := range SetupItems {
		if !slices.Contains(items, it) {
			missing = append(missing, it)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrSetupItems, strings.Join(missing, ", "))
	}
	return e.RecordStep(ctx, attemptID, StepSetup, map[string][]string{"items": SetupItems})
}

// ReadinessView is where a candidate stands before the exam, for their
// lobby and their invigilator's pre-exam view.
type ReadinessView struct {
	AttemptID int64              `json:"attempt_id"`
	Mode      string             `json:"mode"`
	State     string             `json:"state"`
	Done      map[Step]time.Time `json:"done"`
	Missing   []Step             `json:"missing"`
	Refused   string             `json:"refused,omitempty"`
	Device    map[string]string  `json:"device,omitempty"` // the last passed device check's results
	Browser   *Browser           `json:"browser,omitempty"`
	Identity  *Identity          `json:"identity,omitempty"`
	Admitted  *time.Time         `json:"admitted_at,omitempty"`
	// Photo says whether the candidate has a registered photo on file.
	Photo bool `json:"registered_photo"`
}

// Readiness returns the readiness of each attempt that exists among ids.
func (e *Engine) Readiness(ctx context.Context, ids []int64) (map[int64]*ReadinessView, error) {
	out := map[int64]*ReadinessView{}
	if len(ids) == 0 {
		return out, nil
	}
	var modes []struct {
		ID    int64
		Mode  *string
		Photo string
	}
	err := e.db.WithContext(ctx).Table("attempts").Select("attempts.id, exam_sessions.admission_mode AS mode, users.photo").
		Joins("JOIN users ON users.id = attempts.candidate_id").
		Joins("LEFT JOIN exam_sessions ON exam_sessions.id = attempts.session_id").
		Where("attempts.id IN ?", ids).Scan(&modes).Error
	if err != nil {
		return nil, err
	}
	var rows []store.ReadinessStep
	if err := e.db.WithContext(ctx).Where("attempt_id IN ?", ids).Find(&rows).Error; err != nil {
		return nil, err
	}
	for _, m := range modes {
		mode := AdmitOpen // a mock attempt has no session and no admission
		if m.Mode != nil {
			mode = *m.Mode
		}
		out[m.ID] = &ReadinessView{AttemptID: m.ID, Mode: mode, Done: map[Step]time.Time{}, Photo: m.Photo != ""}
	}
	for _, row := range rows {
		v := out[row.AttemptID]
		if v == nil {
			continue
		}
		switch Step(row.Step) {
		case stepAdmitted:
			at := row.DoneAt
			v.Admitted = &at
		case stepRefused:
			var d struct{ Reason string }
			json.Unmarshal([]byte(row.Detail), &d)
			v.Refused = d.Reason
		case StepDevice:
			var d DeviceCheck
			if json.Unmarshal([]byte(row.Detail), &d) == nil {
				v.Device, v.Browser = d.Results, &d.Browser
			}
			v.Done[StepDevice] = row.DoneAt
		case StepIdentity:
			var id Identity
			if json.Unmarshal([]byte(row.Detail), &id) == nil {
				v.Identity = &id
			}
			v.Done[StepIdentity] = row.DoneAt
		default:
			v.Done[Step(row.Step)] = row.DoneAt
		}
	}
	for _, v := range out {
		r := Readiness{Done: map[Step]bool{}, Admitted: v.Admitted != nil, Refused: v.Refused}
		for s := range v.Done {
			r.Done[s] = true
		}
		v.State, v.Missing = r.State(v.Mode), r.Missing()
	}
	return out, nil
}

// ReadyToAdmit picks, among ids, the candidates waiting for an invigilator
// with every step done: neither admitted nor refused.
func (e *Engine) ReadyToAdmit(ctx context.Context, ids []int64) ([]int64, error) {
	views, err := e.Readiness(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, id := range ids {
		if v := views[id]; v != nil && v.State == StateReady {
			out = append(out, id)
		}
	}
	return out, nil
}

// IsCandidate reports whether id is a candidate's account (ErrNoCandidate
// otherwise), before a registered photo is filed for it.
func (e *Engine) IsCandidate(ctx context.Context, id int64) error {
	var n int64
	err := e.db.WithContext(ctx).Model(&store.User{}).Where("id = ? AND role = ?", id, store.RoleCandidate).Count(&n).Error
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// RegisterPhoto files a candidate's registered photo (the file's name, the
// file already stored), audited as the admin's act.
func (e *Engine) RegisterPhoto(ctx context.Context, candidateID, adminID int64, name string) error {
	return e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&store.User{}).Where("id = ? AND role = ?", candidateID, store.RoleCandidate).Update("photo", name)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return store.ErrNotFound
		}
		d, _ := json.Marshal(map[string]string{"photo": name})
		return tx.Create(&store.AuditEvent{At: time.Now().UTC(), ActorID: &adminID, Action: "photo_registered", ObjectType: "user",
			ObjectID: itoa(candidateID), Detail: string(d)}).Error
	})
}

// PhotoOfAttempt is the registered photo of an attempt's candidate ("" if
// none is on file).
func (e *Engine) PhotoOfAttempt(ctx context.Context, attemptID int64) (string, error) {
	var photo string
	err := e.db.WithContext(ctx).Table("attempts").Select("users.photo").Joins("JOIN users ON users.id = attempts.candidate_id").
		Where("attempts.id = ?", attemptID).Scan(&photo).Error
	return photo, err
}
