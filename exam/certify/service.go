package certify

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/accounts"
	"github.com/examhall/examhall/store"
)

// Registration states.
const (
	RegOpen   = "open"
	RegPassed = "passed"
	RegClosed = "closed" // a retake failed: the candidate must register again
)

// Login is a candidate account made for a registration by an admin or an
// import, with its one-time password.
type Login = accounts.Login

// NewCandidate makes a candidate account inside tx.
type NewCandidate func(ctx context.Context, tx *gorm.DB, name string) (Login, error)

// Config is what the service needs.
type Config struct {
	DB *store.DB
	// DataDir holds the submitted documents (submissions/).
	DataDir string
	// NewCandidate makes accounts for admin registrations and imports
	// (default accounts.NewCandidate).
	NewCandidate NewCandidate
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Service keeps the state of candidates' paths to a certificate.
type Service struct {
	cfg Config
	db  *store.DB
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.NewCandidate == nil {
		cfg.NewCandidate = accounts.NewCandidate
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, db: cfg.DB}
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// level is a level with its programme's policy.
type level struct {
	row    store.Level
	spec   exam.LevelSpec
	policy Policy
	prog   store.Programme
}

func (s *Service) level(ctx context.Context, tx *gorm.DB, id int64) (*level, error) {
	var l level
	if err := tx.WithContext(ctx).Take(&l.row, id).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrUnknownLevel
		}
		return nil, err
	}
	if err := tx.WithContext(ctx).Take(&l.prog, l.row.ProgrammeID).Error; err != nil {
		return nil, err
	}
	var err error
	if l.policy, err = ParsePolicy(l.prog.Rules); err != nil {
		return nil, err
	}
	l.spec = exam.LevelSpec{Code: l.row.Code, Rank: l.row.Rank, NameZh: l.row.NameZh, NameEn: l.row.NameEn,
		TrainingHours: l.row.TrainingHours, FeeCents: l.row.FeeCents}
	if err := json.Unmarshal([]byte(l.row.Components), &l.spec.Components); err != nil {
		return nil, fmt.Errorf("certify: level %d components: %w", id, err)
	}
	return &l, nil
}

// lock takes a row lock on PostgreSQL, so two requests deciding on the same
// row (the last two panel scores, two settlements) take turns; SQLite's
// transactions already take the write lock at BEGIN.
func (s *Service) lock(tx *gorm.DB, table string, id int64) error {
	if s.db.Dialect != store.Postgres {
		return nil
	}
	return tx.Exec("SELECT id FROM "+table+" WHERE id = ? FOR UPDATE", id).Error
}

func audit(tx *gorm.DB, at time.Time, actor int64, action, objType string, objID int64, detail any) error {
	b, _ := json.Marshal(detail)
	var a *int64
	if actor != 0 {
		a = &actor
	}
	return tx.Create(&store.AuditEvent{At: at, ActorID: a, Action: action, ObjectType: objType,
		ObjectID: strconv.FormatInt(objID, 10), Detail: string(b)}).Error
}

// Register registers a candidate for a level after checking eligibility
// and that they hold no open registration or certificate of that level.
// It charges the registration fee and opens the level's components.
// actorID is the candidate themself or the admin acting for them.
func (s *Service) Register(ctx context.Context, actorID, candidateID, levelID int64, a Applicant) (*store.Registration, error) {
	var reg *store.Registration
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		reg, err = s.register(ctx, tx, actorID, candidateID, levelID, a)
		return err
	})
	return reg, err
}

func (s *Service) register(ctx context.Context, tx *gorm.DB, actorID, candidateID, levelID int64, a Applicant) (*store.Registration, error) {
	lv, err := s.level(ctx, tx, levelID)
	if err != nil {
		return nil, err
	}
	if a, err = CheckEligibility(lv.policy, lv.spec, a); err != nil {
		return nil, err
	}
	if err := s.lock(tx, "users", candidateID); err != nil {
		return nil, err
	}
	var u store.User
	if err := tx.Take(&u, candidateID).Error; err != nil || u.Role != store.RoleCandidate {
		return nil, fmt.Errorf("%w: no such candidate", store.ErrNotFound)
	}
	if a.Email, a.Mobile = strings.TrimSpace(a.Email), strings.TrimSpace(a.Mobile); a.Email != "" || a.Mobile != "" {
		if err := accounts.CheckContact(a.Email, a.Mobile); err != nil {
			return nil, err
		}
		if err := tx.Model(&store.User{}).Where("id = ?", candidateID).Updates(map[string]any{"email": a.Email, "mobile": a.Mobile}).Error; err != nil {
			return nil, err
		}
	}
	// A candidate who signed up logs in with their ID number: they register
	// themselves, not someone else.
	if own, err := CheckIDNumber(u.Username); err == nil && own != a.IDNumber {
		return nil, ErrIDNotAccount
	}
	var n int64
	if err := tx.Model(&store.Registration{}).Where("level_id = ? AND status IN ? AND (candidate_id = ? OR id_number = ?)",
		levelID, []string{RegOpen, RegPassed}, candidateID, a.IDNumber).Count(&n).Error; err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, ErrRegistered
	}
	now := s.now()
	reg := &store.Registration{CandidateID: candidateID, LevelID: levelID, Name: a.Name, IDNumber: a.IDNumber, Education: a.Education,
		TrainingHours: a.TrainingHours, Organisation: a.Organisation, Status: RegOpen, CreatedAt: now}
	if actorID != 0 {
		reg.CreatedBy = &actorID
	}
	if err := tx.Create(reg).Error; err != nil {
		return nil, err
	}
	fee := &store.Fee{RegistrationID: reg.ID, Item: ItemRegistration, AmountCents: Fee(lv.policy, lv.spec, ItemRegistration), CreatedAt: now}
	if err := tx.Create(fee).Error; err != nil {
		return nil, err
	}
	for _, c := range lv.spec.Components {
		if err := tx.Create(&store.Sitting{RegistrationID: reg.ID, Component: string(c), N: 1, FeeID: &fee.ID, CreatedAt: now}).Error; err != nil {
			return nil, err
		}
	}
	if err := audit(tx, now, actorID, "registered", "registration", reg.ID, map[string]any{"candidate": candidateID, "level": lv.row.Code,
		"organisation": a.Organisation, "education": a.Education, "training_hours": a.TrainingHours}); err != nil {
		return nil, err
	}
	return reg, s.regNotice(ctx, tx, reg.ID, "registration_received", nil)
}

// RegisterNew registers a person without an account (an admin acting for
// them): it makes their candidate account and returns its login.
func (s *Service) RegisterNew(ctx context.Context, actorID, levelID int64, a Applicant) (*store.Registration, Login, error) {
	var reg *store.Registration
	var login Login
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if login, err = s.cfg.NewCandidate(ctx, tx, strings.TrimSpace(a.Name)); err != nil {
			return err
		}
		reg, err = s.register(ctx, tx, actorID, login.UserID, levelID, a)
		return err
	})
	return reg, login, err
}

// LineError is one refused line of an import.
type LineError struct {
	Line  int    `json:"line"`
	Code  string `json:"code"`
	Error string `json:"error"`
}

// ImportError is an import refused for invalid lines; nothing was imported.
type ImportError struct{ Lines []LineError }

func (e *ImportError) Error() string {
	return fmt.Sprintf("certify: %d invalid lines; nothing imported", len(e.Lines))
}

// Unwrap makes it an ErrImport to clients.
func (e *ImportError) Unwrap() error { return ErrImport }

// LineErrors lists the invalid lines, for the client.
func (e *ImportError) LineErrors() any { return e.Lines }

// Row is one line of a cohort import.
type Row struct {
	Level string
	Applicant
}

// Imported is one registration made by an import, with its login.
type Imported struct {
	Line           int    `json:"line"`
	RegistrationID int64  `json:"registration_id"`
	Name           string `json:"name"`
	Login
}

// Import registers a training organisation's cohort, all or none: each row
// gets a candidate account and a registration; any invalid row refuses the
// whole import, listing every invalid line with the rule it broke.
func (s *Service) Import(ctx context.Context, actorID, programmeID int64, rows []Row) ([]Imported, error) {
	var levels []store.Level
	if err := s.db.WithContext(ctx).Where("programme_id = ?", programmeID).Find(&levels).Error; err != nil {
		return nil, err
	}
	byCode := map[string]int64{}
	for _, l := range levels {
		byCode[l.Code] = l.ID
	}
	var out []Imported
	var bad []LineError
	seen := map[string]int{}
	for i, r := range rows {
		line := i + 2 // after the header
		id, ok := byCode[strings.TrimSpace(r.Level)]
		if !ok {
			bad = append(bad, LineError{line, ErrUnknownLevel.Code(), ErrUnknownLevel.Text()})
			continue
		}
		lv, err := s.level(ctx, s.db.DB, id)
		if err != nil {
			return nil, err
		}
		a, err := CheckEligibility(lv.policy, lv.spec, r.Applicant)
		if err != nil {
			bad = append(bad, lineError(line, err))
			continue
		}
		key := r.Level + "/" + a.IDNumber
		if first, dup := seen[key]; dup {
			bad = append(bad, LineError{line, ErrRegistered.Code(), fmt.Sprintf("the same person and level as line %d", first)})
		}
		seen[key] = line
	}
	if len(bad) > 0 {
		return nil, &ImportError{bad}
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for i, r := range rows {
			login, err := s.cfg.NewCandidate(ctx, tx, strings.TrimSpace(r.Name))
			if err != nil {
				return err
			}
			reg, err := s.register(ctx, tx, actorID, login.UserID, byCode[strings.TrimSpace(r.Level)], r.Applicant)
			if err != nil {
				return &ImportError{[]LineError{lineError(i+2, err)}}
			}
			out = append(out, Imported{Line: i + 2, RegistrationID: reg.ID, Name: reg.Name, Login: login})
		}
		return nil
	})
	return out, err
}

func lineError(line int, err error) LineError {
	var ce *store.Error
	if errors.As(err, &ce) {
		return LineError{line, ce.Code(), err.Error()}
	}
	return LineError{line, "invalid", err.Error()}
}

// MarkPaid records the payment of a fee by an admin, with the receipt's
// reference. A payment gateway would call it with its own method name.
func (s *Service) MarkPaid(ctx context.Context, actorID, feeID int64, method, reference string) error {
	reference = strings.TrimSpace(reference)
	if reference == "" {
		return ErrReceipt
	}
	if method == "" {
		method = "manual"
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lock(tx, "fees", feeID); err != nil {
			return err
		}
		var f store.Fee
		if err := tx.Take(&f, feeID).Error; err != nil {
			return err
		}
		if f.PaidAt != nil {
			return ErrAlreadyPaid
		}
		now := s.now()
		if err := tx.Model(&f).Updates(map[string]any{"paid_at": now, "method": method, "reference": reference, "paid_by": actorID}).Error; err != nil {
			return err
		}
		if err := audit(tx, now, actorID, "fee_paid", "fee", f.ID, map[string]any{"registration": f.RegistrationID, "item": f.Item,
			"amount_cents": f.AmountCents, "method": method, "reference": reference}); err != nil {
			return err
		}
		return s.regNotice(ctx, tx, f.RegistrationID, "fee_confirmed", map[string]string{"amount": yuan(f.AmountCents)})
	})
}

func paid(tx *gorm.DB, feeID *int64) (bool, error) {
	if feeID == nil {
		return true, nil
	}
	var f store.Fee
	if err := tx.Take(&f, *feeID).Error; err != nil {
		return false, err
	}
	return f.PaidAt != nil, nil
}

// openSitting is the latest sitting of a component that has no result.
func openSitting(tx *gorm.DB, regID int64, component string) (*store.Sitting, error) {
	var st store.Sitting
	err := tx.Where("registration_id = ? AND component = ?", regID, component).Order("n DESC").Take(&st).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && st.Passed != nil) {
		return nil, ErrNotOpen
	}
	return &st, err
}

// Seat gives a registration's open theory sitting a seat in an exam session
// of its level; the sitting's fee must be paid. The paper is drawn at once.
func (s *Service) Seat(ctx context.Context, actorID, regID, sessionID int64) (*store.Seat, error) {
	var seat *store.Seat
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		seat, err = s.seat(ctx, tx, actorID, regID, sessionID)
		return err
	})
	return seat, err
}

func (s *Service) seat(ctx context.Context, tx *gorm.DB, actorID, regID, sessionID int64) (*store.Seat, error) {
	var reg store.Registration
	if err := tx.Take(&reg, regID).Error; err != nil {
		return nil, err
	}
	if reg.Status != RegOpen {
		return nil, ErrNotOpen
	}
	st, err := openSitting(tx, regID, string(exam.Theory))
	if err != nil {
		return nil, err
	}
	if st.SeatID != nil {
		return nil, fmt.Errorf("%w: the sitting already has a seat", ErrNotOpen)
	}
	if ok, err := paid(tx, st.FeeID); err != nil {
		return nil, err
	} else if !ok {
		return nil, ErrNotPaid
	}
	var sess store.ExamSession
	if err := tx.Take(&sess, sessionID).Error; err != nil {
		return nil, err
	}
	var ex store.Exam
	if err := tx.Take(&ex, sess.ExamID).Error; err != nil {
		return nil, err
	}
	if ex.Kind != "formal" || ex.LevelID == nil || *ex.LevelID != reg.LevelID {
		return nil, fmt.Errorf("%w: the session is not of this level's theory exam", ErrNoSession)
	}
	var room store.Room
	err = tx.Raw(`SELECT rooms.* FROM rooms LEFT JOIN seats ON seats.room_id = rooms.id WHERE rooms.session_id = ?
		GROUP BY rooms.id, rooms.session_id, rooms.code, rooms.name ORDER BY COUNT(seats.id), rooms.id LIMIT 1`, sessionID).Scan(&room).Error
	if err != nil {
		return nil, err
	}
	if room.ID == 0 {
		room = store.Room{SessionID: sessionID, Code: "R01", Name: "第 01 考场"}
		if err := tx.Create(&room).Error; err != nil {
			return nil, err
		}
	}
	var seatNo int64
	if err := tx.Model(&store.Seat{}).Where("room_id = ?", room.ID).Count(&seatNo).Error; err != nil {
		return nil, err
	}
	seat := &store.Seat{SessionID: sessionID, RoomID: room.ID, CandidateID: reg.CandidateID, Ticket: newTicket(), SeatNo: int(seatNo) + 1, CreatedAt: s.now()}
	// The room's least-loaded invigilator becomes responsible for the seat.
	var inv struct{ UserID int64 }
	err = tx.Raw(`SELECT room_invigilators.user_id FROM room_invigilators LEFT JOIN seats ON seats.invigilator_id = room_invigilators.user_id
		AND seats.session_id = ? WHERE room_invigilators.room_id = ? GROUP BY room_invigilators.user_id ORDER BY COUNT(seats.id), room_invigilators.user_id LIMIT 1`,
		sessionID, room.ID).Scan(&inv).Error
	if err != nil {
		return nil, err
	}
	if inv.UserID != 0 {
		seat.InvigilatorID = &inv.UserID
	}
	if err := tx.Create(seat).Error; err != nil {
		if errors.Is(err, gorm.ErrDuplicatedKey) {
			return nil, fmt.Errorf("%w: the candidate already has a seat in this session", ErrNotOpen)
		}
		return nil, err
	}
	if _, err := exam.ScheduleSession(ctx, tx, sessionID, nil); err != nil {
		return nil, err
	}
	if err := tx.Model(st).Update("seat_id", seat.ID).Error; err != nil {
		return nil, err
	}
	if err := audit(tx, s.now(), actorID, "seated", "registration", regID, map[string]any{"session": sessionID, "sitting": st.ID, "n": st.N, "ticket": seat.Ticket}); err != nil {
		return nil, err
	}
	return seat, s.seatNotice(ctx, tx, seat)
}

// newTicket makes an exam ticket number: 12 random digits.
func newTicket() string {
	var b [12]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = '0' + b[i]%10
	}
	if b[0] == '0' {
		b[0] = '9'
	}
	return string(b[:])
}

// Submit stores a candidate's document for their open practical or review
// sitting: checked by content, size-limited, within the working-day
// deadline after the theory exam, stored under its SHA-256.
// UploadLimit checks that a sitting is the candidate's and returns the
// largest document its programme takes, so that an upload is refused
// before its body is read.
func (s *Service) UploadLimit(ctx context.Context, candidateID, sittingID int64) (int64, error) {
	var st store.Sitting
	if err := s.db.WithContext(ctx).Take(&st, sittingID).Error; err != nil {
		return 0, err
	}
	var reg store.Registration
	if err := s.db.WithContext(ctx).Take(&reg, st.RegistrationID).Error; err != nil {
		return 0, err
	}
	if reg.CandidateID != candidateID {
		return 0, fmt.Errorf("%w: not the candidate's sitting", store.ErrNotFound)
	}
	lv, err := s.level(ctx, s.db.DB, reg.LevelID)
	if err != nil {
		return 0, err
	}
	return lv.policy.MaxUploadBytes, nil
}

func (s *Service) Submit(ctx context.Context, candidateID, sittingID int64, name string, body []byte) (*store.Sitting, error) {
	var st store.Sitting
	// The theory result may have come in since the path was last read.
	if err := s.db.WithContext(ctx).Take(&st, sittingID).Error; err == nil {
		if _, err := s.Settle(ctx, st.RegistrationID); err != nil {
			return nil, err
		}
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var reg store.Registration
		if err := tx.Take(&st, sittingID).Error; err != nil {
			return err
		}
		if err := tx.Take(&reg, st.RegistrationID).Error; err != nil {
			return err
		}
		if reg.CandidateID != candidateID {
			return fmt.Errorf("%w: not the candidate's sitting", store.ErrNotFound)
		}
		lv, err := s.level(ctx, tx, reg.LevelID)
		if err != nil {
			return err
		}
		if st.Component == string(exam.Theory) || st.Passed != nil || st.OpenedAt == nil || reg.Status != RegOpen {
			return ErrNotOpen
		}
		var scored int64
		if err := tx.Model(&store.PanelSeat{}).Where("sitting_id = ? AND scored_at IS NOT NULL", st.ID).Count(&scored).Error; err != nil {
			return err
		}
		if scored > 0 {
			return fmt.Errorf("%w: the panel has started scoring", ErrNotOpen)
		}
		if ok, err := paid(tx, st.FeeID); err != nil {
			return err
		} else if !ok {
			return ErrNotPaid
		}
		now := s.now()
		if deadline := SubmissionDeadline(lv.policy, *st.OpenedAt); !now.Before(deadline) {
			return fmt.Errorf("%w: it was %s", ErrLate, deadline.In(China).Format("2006-01-02 15:04 MST"))
		}
		kind, err := SniffDocument(lv.policy, body)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		hash := hex.EncodeToString(sum[:])
		path := filepath.Join("submissions", hash+"."+kind)
		if err := writeFile(filepath.Join(s.cfg.DataDir, path), body); err != nil {
			return err
		}
		upd := map[string]any{"file_name": cleanName(name, kind), "file_type": kind, "file_size": len(body), "file_sha256": hash,
			"file_path": path, "submitted_at": now}
		if err := tx.Model(&st).Updates(upd).Error; err != nil {
			return err
		}
		return audit(tx, now, candidateID, "document_submitted", "sitting", st.ID, map[string]any{"sha256": hash, "size": len(body), "type": kind})
	})
	return &st, err
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func cleanName(name, kind string) string {
	name = strings.Map(func(r rune) rune {
		if r < 32 || strings.ContainsRune(`/\"<>`, r) {
			return '_'
		}
		return r
	}, filepath.Base(name))
	if len([]rune(name)) > 100 {
		name = string([]rune(name)[:100])
	}
	if name == "" || name == "." {
		name = "document"
	}
	if !strings.HasSuffix(strings.ToLower(name), "."+kind) {
		name += "." + kind
	}
	return name
}

// Document returns a submitted document's stored path (under DataDir) and
// name, for the candidate, the sitting's panel members and admins.
func (s *Service) Document(ctx context.Context, user *store.User, sittingID int64) (path, name, kind string, err error) {
	var st store.Sitting
	if err := s.db.WithContext(ctx).Take(&st, sittingID).Error; err != nil {
		return "", "", "", err
	}
	if st.FilePath == "" {
		return "", "", "", store.ErrNotFound
	}
	if err := s.mayRead(ctx, user, &st); err != nil {
		return "", "", "", err
	}
	return filepath.Join(s.cfg.DataDir, st.FilePath), st.FileName, st.FileType, nil
}

func (s *Service) mayRead(ctx context.Context, user *store.User, st *store.Sitting) error {
	switch user.Role {
	case store.RoleAdmin:
		return nil
	case store.RoleCandidate:
		var reg store.Registration
		if err := s.db.WithContext(ctx).Take(&reg, st.RegistrationID).Error; err != nil {
			return err
		}
		if reg.CandidateID == user.ID {
			return nil
		}
	case store.RolePanel:
		var n int64
		if err := s.db.WithContext(ctx).Model(&store.PanelSeat{}).Where("sitting_id = ? AND user_id = ?", st.ID, user.ID).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: not yours", store.ErrNotFound)
}
