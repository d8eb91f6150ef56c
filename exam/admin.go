package exam

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// ErrImport is an import refused for invalid lines; Lines says which.
type ErrImport struct{ Lines []LineError }

func (e *ErrImport) Error() string {
	return fmt.Sprintf("exam: %d invalid lines; nothing imported", len(e.Lines))
}

// Unwrap makes it an ErrInvalidImport to clients.
func (e *ErrImport) Unwrap() error { return ErrInvalidImport }

// ErrInvalidImport is what an ErrImport is to clients.
var ErrInvalidImport = store.NewError("exam", store.Invalid, "invalid_import", "the file has invalid lines; nothing was imported")

// LineErrors lists the invalid lines, for the client.
func (e *ErrImport) LineErrors() any { return e.Lines }

// ImportQuestions adds questions to a programme's bank, all or none,
// audited as the admin's act.
func (e *Engine) ImportQuestions(ctx context.Context, programmeID, actorID int64, qs []Question) (int, error) {
	if len(qs) == 0 {
		return 0, &ErrImport{[]LineError{{0, "file", "no questions"}}}
	}
	rows := make([]store.Question, len(qs))
	now := time.Now().UTC()
	for i, q := range qs {
		rows[i] = toRow(programmeID, q, now)
	}
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Take(&store.Programme{}, programmeID).Error; err != nil {
			return err
		}
		if err := tx.CreateInBatches(rows, 200).Error; err != nil {
			return err
		}
		return tx.Create(&store.AuditEvent{At: now, ActorID: &actorID, Action: "questions_imported", ObjectType: "programme",
			ObjectID: itoa(programmeID), Detail: string(mustJSON(map[string]int{"count": len(rows)}))}).Error
	})
	return len(rows), err
}

func toRow(programmeID int64, q Question, now time.Time) store.Question {
	if q.Tags == nil {
		q.Tags = []string{}
	}
	return store.Question{ProgrammeID: programmeID, Kind: string(q.Kind), Stem: q.Stem, Options: string(mustJSON(q.Options)),
		Answer: string(mustJSON(q.Answer)), Tags: string(mustJSON(q.Tags)), Difficulty: q.Difficulty, PartialCredit: q.PartialCredit,
		Explanation: q.Explanation, Pool: cmp.Or(q.Pool, PoolFormal), CreatedAt: now, UpdatedAt: now}
}

// FromRow turns a stored question back into its import form (with the key).
func FromRow(r store.Question) Question {
	q := Question{Kind: Kind(r.Kind), Stem: r.Stem, Difficulty: r.Difficulty, PartialCredit: r.PartialCredit, Explanation: r.Explanation, Pool: r.Pool}
	json.Unmarshal([]byte(r.Options), &q.Options)
	json.Unmarshal([]byte(r.Answer), &q.Answer)
	json.Unmarshal([]byte(r.Tags), &q.Tags)
	return q
}

// Bank lists a programme's questions with their ids.
func (e *Engine) Bank(ctx context.Context, programmeID int64) ([]store.Question, error) {
	var rows []store.Question
	err := e.db.WithContext(ctx).Where("programme_id = ?", programmeID).Order("id").Find(&rows).Error
	return rows, err
}

// RegradeReport says what a key correction changed.
type RegradeReport struct {
	QuestionID int64 `json:"question_id"`
	Attempts   int   `json:"attempts"`
	Changed    int   `json:"changed"`
}

// CorrectKey changes a question's key and regrades every ended attempt whose
// paper has it. Each changed score is written to the attempt's log and the
// audit trail with the reason.
func (e *Engine) CorrectKey(ctx context.Context, questionID int64, key []int, actorID int64, reason string) (*RegradeReport, error) {
	if reason == "" {
		return nil, fmt.Errorf("%w: a key correction needs a reason", ErrBadValue)
	}
	var row store.Question
	if err := e.db.WithContext(ctx).Take(&row, questionID).Error; err != nil {
		return nil, err
	}
	q := FromRow(row)
	old := q.Answer
	q.Answer = key
	if errs := q.Validate(1); len(errs) > 0 {
		return nil, &ErrImport{errs}
	}
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&row).Updates(map[string]any{"answer": string(mustJSON(key)), "updated_at": time.Now().UTC()}).Error; err != nil {
			return err
		}
		return tx.Create(&store.AuditEvent{At: time.Now().UTC(), ActorID: &actorID, Action: "key_corrected", ObjectType: "question",
			ObjectID: itoa(questionID), Detail: string(mustJSON(map[string]any{"old": old, "new": key, "reason": reason}))}).Error
	})
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	clear(e.exams) // every cached exam of the bank has the old key
	e.mu.Unlock()

	var attempts []store.Attempt
	err = e.db.WithContext(ctx).Joins("JOIN exams ON exams.id = attempts.exam_id").
		Where("exams.programme_id = ? AND attempts.status IN ? AND attempts.paper LIKE ?", row.ProgrammeID,
			[]string{StatusSubmitted, StatusAutoSubmitted, StatusTerminated}, fmt.Sprintf(`%%"q":%d,%%`, questionID)).
		Find(&attempts).Error
	if err != nil {
		return nil, err
	}
	rep := &RegradeReport{QuestionID: questionID, Attempts: len(attempts)}
	for _, a := range attempts {
		info, err := e.exam(ctx, a.ExamID)
		if err != nil {
			return nil, err
		}
		o := &op{attemptID: a.ID, at: e.now(), kind: EvRegrade, readsAnswers: true}
		o.apply = func(tx *gorm.DB, st *rowState) (bool, error) {
			score, passed, err := grade(tx, info, &a)
			if err != nil {
				return false, err
			}
			if a.Status == StatusTerminated {
				passed = false
			}
			if a.Score != nil && *a.Score == score {
				return false, nil
			}
			if err := tx.Model(&store.Attempt{}).Where("id = ?", a.ID).Updates(map[string]any{"score": score, "passed": passed}).Error; err != nil {
				return false, err
			}
			detail := map[string]any{"question": questionID, "old": a.Score, "new": score, "reason": reason}
			o.data = mustJSON(detail)
			return true, tx.Create(&store.AuditEvent{At: time.Now().UTC(), ActorID: &actorID, Action: "regraded", ObjectType: "attempt",
				ObjectID: itoa(a.ID), Detail: string(o.data)}).Error
		}
		if err := e.w.do(ctx, o); err != nil {
			return nil, err
		}
		if o.data != nil {
			rep.Changed++
		}
	}
	return rep, nil
}

// ResultRow is one attempt of a session in the results list.
type ResultRow struct {
	AttemptID   int64      `json:"attempt_id"`
	CandidateID int64      `json:"candidate_id"`
	Photo       string     `json:"photo"` // the registered photo's file, "" when none is on file
	Ticket      string     `json:"ticket"`
	Name        string     `json:"name"`
	Room        string     `json:"room"`
	Status      string     `json:"status"`
	StartedAt   *time.Time `json:"started_at"`
	EndedAt     *time.Time `json:"ended_at"`
	Score       *float64   `json:"score"`
	Passed      *bool      `json:"passed"`
	Credited    int        `json:"credited_seconds"`
}

// SessionResults lists every attempt of a session, by ticket.
func (e *Engine) SessionResults(ctx context.Context, sessionID int64) ([]ResultRow, error) {
	var rows []ResultRow
	err := e.db.WithContext(ctx).Table("attempts").
		Select(`attempts.id AS attempt_id, attempts.candidate_id, users.photo, seats.ticket, users.display_name AS name, rooms.name AS room, attempts.status,
			attempts.started_at, attempts.ended_at, attempts.score, attempts.passed, attempts.credited_seconds AS credited`).
		Joins("JOIN seats ON seats.id = attempts.seat_id").
		Joins("JOIN users ON users.id = attempts.candidate_id").
		Joins("JOIN rooms ON rooms.id = seats.room_id").
		Where("attempts.session_id = ?", sessionID).Order("seats.ticket").Scan(&rows).Error
	return rows, err
}

// QuestionStat is how one question fared in a session.
type QuestionStat struct {
	QuestionID int64   `json:"question_id"`
	Kind       string  `json:"kind"`
	Stem       string  `json:"stem"`
	OnPapers   int     `json:"on_papers"`
	Answered   int     `json:"answered"`
	Correct    int     `json:"correct"`
	AvgPoints  float64 `json:"avg_points"`
	// Facility is the share of graded papers that earned full points.
	Facility float64 `json:"facility"`
}

// SessionStats computes per-question statistics over a session's ended attempts.
func (e *Engine) SessionStats(ctx context.Context, sessionID int64) ([]QuestionStat, error) {
	var attempts []store.Attempt
	if err := e.db.WithContext(ctx).Where("session_id = ? AND status IN ?", sessionID,
		[]string{StatusSubmitted, StatusAutoSubmitted, StatusTerminated}).Find(&attempts).Error; err != nil {
		return nil, err
	}
	stats := map[int64]*QuestionStat{}
	points := map[int64]float64{}
	var order []int64
	ids := make([]int64, 0, len(attempts))
	for _, a := range attempts {
		ids = append(ids, a.ID)
		var p Paper
		json.Unmarshal([]byte(a.Paper), &p)
		for _, it := range p.Items {
			s := stats[it.QuestionID]
			if s == nil {
				s = &QuestionStat{QuestionID: it.QuestionID}
				stats[it.QuestionID] = s
				order = append(order, it.QuestionID)
				points[it.QuestionID] = it.Points
			}
			s.OnPapers++
		}
	}
	if len(ids) == 0 {
		return []QuestionStat{}, nil
	}
	var answers []store.Answer
	if err := e.db.WithContext(ctx).Where("attempt_id IN ? AND value <> '[]'", ids).Find(&answers).Error; err != nil {
		return nil, err
	}
	sum := map[int64]float64{}
	for _, an := range answers {
		s := stats[an.QuestionID]
		if s == nil {
			continue
		}
		s.Answered++
		if an.Points != nil {
			sum[an.QuestionID] += *an.Points
			if *an.Points >= points[an.QuestionID] {
				s.Correct++
			}
		}
	}
	var qs []store.Question
	if err := e.db.WithContext(ctx).Where("id IN ?", order).Find(&qs).Error; err != nil {
		return nil, fmt.Errorf("questions of session %d: %w", sessionID, err)
	}
	for _, q := range qs {
		stats[q.ID].Kind, stats[q.ID].Stem = q.Kind, q.Stem
	}
	out := make([]QuestionStat, 0, len(order))
	for _, id := range order {
		s := stats[id]
		s.AvgPoints = round2(sum[id] / float64(s.OnPapers))
		s.Facility = round2(float64(s.Correct) / float64(s.OnPapers))
		out = append(out, *s)
	}
	return out, nil
}

// ErrBadPool is a pool other than formal or practice.
var ErrBadPool = store.NewError("exam", store.Invalid, "bad_pool", "a question's pool is formal or practice")

// ErrPoolInUse refuses to move a question that papers of its pool already
// hold: a formal question seen on a formal paper may go to practice only
// after its exam, and a practice question once seen is no longer secret.
var ErrPoolInUse = store.NewError("exam", store.Conflict, "pool_in_use", "a question on a drawn paper keeps its pool")

// SetQuestionPool moves a question to the formal or the practice pool,
// audited. A practice question that any mock paper has shown can never
// become formal, and a formal question on a paper not yet ended stays.
func (e *Engine) SetQuestionPool(ctx context.Context, questionID int64, pool string, actorID int64) error {
	if pool != PoolFormal && pool != PoolPractice {
		return ErrBadPool
	}
	return e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var q store.Question
		if err := tx.Take(&q, questionID).Error; err != nil {
			return err
		}
		if q.Pool == pool {
			return nil
		}
		// A paper holds the question when its JSON names it as "q":<id>.
		var held int64
		where := "paper LIKE ? OR paper LIKE ?"
		pat1, pat2 := fmt.Sprintf(`%%"q":%d,%%`, questionID), fmt.Sprintf(`%%"q":%d}%%`, questionID)
		switch pool {
		case PoolFormal: // leaving practice: no mock may have shown it
			if err := tx.Model(&store.Attempt{}).Where("kind = ? AND ("+where+")", KindMock, pat1, pat2).Count(&held).Error; err != nil {
				return err
			}
		case PoolPractice: // leaving formal: no formal paper may still be coming
			if err := tx.Model(&store.Attempt{}).Where("kind = ? AND status IN ? AND ("+where+")", KindFormal, []string{StatusNotStarted, StatusInProgress}, pat1, pat2).Count(&held).Error; err != nil {
				return err
			}
		}
		if held > 0 {
			return fmt.Errorf("%w: %d papers hold it", ErrPoolInUse, held)
		}
		if err := tx.Model(&store.Question{}).Where("id = ?", questionID).Updates(map[string]any{"pool": pool, "updated_at": time.Now().UTC()}).Error; err != nil {
			return err
		}
		return tx.Create(&store.AuditEvent{At: time.Now().UTC(), ActorID: &actorID, Action: "question_pool_changed", ObjectType: "question",
			ObjectID: itoa(questionID), Detail: string(mustJSON(map[string]string{"from": q.Pool, "to": pool}))}).Error
	})
}

// ProgrammeView is a programme with the size of its bank.
type ProgrammeView struct {
	ID        int64  `json:"id"`
	Code      string `json:"code"`
	NameZh    string `json:"name_zh"`
	NameEn    string `json:"name_en"`
	Questions int    `json:"questions"`
	// Practice is how many of them are in the practice pool.
	Practice int `json:"practice"`
}

// Programmes lists the programmes.
func (e *Engine) Programmes(ctx context.Context) ([]ProgrammeView, error) {
	var out []ProgrammeView
	err := e.db.WithContext(ctx).Table("programmes").
		Select("programmes.id, programmes.code, programmes.name_zh, programmes.name_en, (SELECT COUNT(*) FROM questions WHERE questions.programme_id = programmes.id) AS questions, " +
			"(SELECT COUNT(*) FROM questions WHERE questions.programme_id = programmes.id AND questions.pool = 'practice') AS practice").
		Order("programmes.id").Scan(&out).Error
	return out, err
}

// ExamView is an exam as the admin sees it.
type ExamView struct {
	ID              int64      `json:"id"`
	ProgrammeID     int64      `json:"programme_id"`
	Code            string     `json:"code"`
	Kind            string     `json:"kind"`
	TitleZh         string     `json:"title_zh"`
	TitleEn         string     `json:"title_en"`
	DurationMinutes int        `json:"duration_minutes"`
	PassMark        int        `json:"pass_mark"`
	Blueprint       *Blueprint `json:"blueprint"`
	Policy          Policy     `json:"policy"`
}

// Exams lists the exams with their blueprints and policies.
func (e *Engine) Exams(ctx context.Context) ([]ExamView, error) {
	var rows []store.Exam
	if err := e.db.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]ExamView, 0, len(rows))
	for _, r := range rows {
		bp, _ := ParseBlueprint(r.Blueprint)
		p, _ := ParsePolicy(r.Policy)
		out = append(out, ExamView{r.ID, r.ProgrammeID, r.Code, r.Kind, r.TitleZh, r.TitleEn, r.DurationMinutes, r.PassMark, bp, p})
	}
	return out, nil
}

// UpdateExam sets an exam's blueprint and policy. The blueprint must sum to
// 100 points and be drawable from the bank as it is now. Papers already
// drawn keep their questions; sessions scheduled later use the new one.
func (e *Engine) UpdateExam(ctx context.Context, examID int64, bp Blueprint, p Policy, actorID int64) error {
	raw, err := json.Marshal(bp)
	if err != nil {
		return err
	}
	parsed, err := ParseBlueprint(string(raw))
	if err != nil {
		return err
	}
	var ex store.Exam
	if err := e.db.WithContext(ctx).Take(&ex, examID).Error; err != nil {
		return err
	}
	var bank []store.Question
	if err := e.db.WithContext(ctx).Where("programme_id = ? AND pool = ?", ex.ProgrammeID, poolOf(ex.Kind)).Find(&bank).Error; err != nil {
		return err
	}
	if _, err := Draw(parsed, bank, 1); err != nil {
		return fmt.Errorf("%w (from the %s pool)", err, poolOf(ex.Kind))
	}
	pol := mustJSON(p)
	if _, err := ParsePolicy(string(pol)); err != nil {
		return err
	}
	err = e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&ex).Updates(map[string]any{"blueprint": string(raw), "policy": string(pol)}).Error; err != nil {
			return err
		}
		return tx.Create(&store.AuditEvent{At: time.Now().UTC(), ActorID: &actorID, Action: "exam_updated", ObjectType: "exam",
			ObjectID: itoa(examID), Detail: string(mustJSON(map[string]any{"old_blueprint": json.RawMessage(ex.Blueprint), "old_policy": json.RawMessage(ex.Policy), "blueprint": bp, "policy": p}))}).Error
	})
	if err != nil {
		return err
	}
	e.forgetExam(examID)
	return nil
}

// SessionView is a session with how many attempts are in each state.
type SessionView struct {
	ID              int64          `json:"id"`
	ExamID          int64          `json:"exam_id"`
	Code            string         `json:"code"`
	Title           string         `json:"title"`
	StartsAt        time.Time      `json:"starts_at"`
	AdmissionEndsAt time.Time      `json:"admission_ends_at"`
	EndsAt          time.Time      `json:"ends_at"`
	AdmissionMode   string         `json:"admission_mode"`
	Seats           int            `json:"seats"`
	Attempts        map[string]int `json:"attempts"`
	// StorageEstimateBytes is what the session's recordings take at most:
	// every seat's two cameras at the exam's caps and the PC microphone
	// for the exam's whole length.
	StorageEstimateBytes int64 `json:"storage_estimate_bytes"`
}

// storagePerSeat is the most a seat's recordings take in an exam: both
// full layers and the microphone (the small layers are not recorded).
func storagePerSeat(ex store.Exam) int64 {
	p, _ := ParsePolicy(ex.Policy)
	return int64(p.recordedBps()) / 8 * int64(ex.DurationMinutes) * 60
}

// Sessions lists the sessions, newest first.
func (e *Engine) Sessions(ctx context.Context) ([]SessionView, error) {
	var rows []store.ExamSession
	if err := e.db.WithContext(ctx).Order("starts_at DESC").Limit(200).Find(&rows).Error; err != nil {
		return nil, err
	}
	var exams []store.Exam
	if err := e.db.WithContext(ctx).Find(&exams).Error; err != nil {
		return nil, err
	}
	perSeat := map[int64]int64{}
	for _, ex := range exams {
		perSeat[ex.ID] = storagePerSeat(ex)
	}
	out := make([]SessionView, 0, len(rows))
	for _, r := range rows {
		v := SessionView{ID: r.ID, ExamID: r.ExamID, Code: r.Code, Title: r.Title, StartsAt: r.StartsAt, AdmissionEndsAt: r.AdmissionEndsAt, EndsAt: r.EndsAt, AdmissionMode: r.AdmissionMode, Attempts: map[string]int{}}
		var seats int64
		if err := e.db.WithContext(ctx).Model(&store.Seat{}).Where("session_id = ?", r.ID).Count(&seats).Error; err != nil {
			return nil, fmt.Errorf("seats of session %d: %w", r.ID, err)
		}
		v.Seats = int(seats)
		v.StorageEstimateBytes = seats * perSeat[r.ExamID]
		var counts []struct {
			Status string
			N      int
		}
		if err := e.db.WithContext(ctx).Model(&store.Attempt{}).Select("status, COUNT(*) AS n").Where("session_id = ?", r.ID).Group("status").Scan(&counts).Error; err != nil {
			return nil, fmt.Errorf("attempts of session %d: %w", r.ID, err)
		}
		for _, c := range counts {
			v.Attempts[c.Status] = c.N
		}
		out = append(out, v)
	}
	return out, nil
}

// SessionSpec is what an admin gives to create a session.
type SessionSpec struct {
	ExamID          int64     `json:"exam_id"`
	Code            string    `json:"code"`
	Title           string    `json:"title"`
	StartsAt        time.Time `json:"starts_at"`
	AdmissionEndsAt time.Time `json:"admission_ends_at"`
	EndsAt          time.Time `json:"ends_at"`
	// AdmissionMode is open, auto or manual (the default: an invigilator admits).
	AdmissionMode string `json:"admission_mode,omitempty"`
}

// ErrBadSession: a session's times or names do not make sense.
var ErrBadSession = store.NewError("exam", store.Invalid, "bad_session", "a session needs an exam, a code, a title, and starts ≤ admission end ≤ end")

func checkMode(mode string) error {
	switch mode {
	case AdmitOpen, AdmitAuto, AdmitManual:
		return nil
	}
	return fmt.Errorf("%w: admission mode is open, auto or manual", ErrBadSession)
}

// SetAdmissionMode changes how a session's candidates are admitted (open,
// auto or manual), audited. Candidates already admitted stay admitted.
func (e *Engine) SetAdmissionMode(ctx context.Context, sessionID int64, mode string, actorID int64) error {
	if err := checkMode(mode); err != nil {
		return err
	}
	return e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var s store.ExamSession
		if err := tx.Take(&s, sessionID).Error; err != nil {
			return err
		}
		if err := tx.Model(&s).Update("admission_mode", mode).Error; err != nil {
			return err
		}
		return tx.Create(&store.AuditEvent{At: time.Now().UTC(), ActorID: &actorID, Action: "admission_mode_changed", ObjectType: "session",
			ObjectID: itoa(sessionID), Detail: string(mustJSON(map[string]string{"from": s.AdmissionMode, "to": mode}))}).Error
	})
}

// CreateSession creates a session; seats are added by the programme's
// registration, then ScheduleSession draws their papers.
func (e *Engine) CreateSession(ctx context.Context, s SessionSpec, actorID int64) (int64, error) {
	if s.ExamID == 0 || s.Code == "" || s.Title == "" || s.StartsAt.IsZero() || s.AdmissionEndsAt.Before(s.StartsAt) || s.EndsAt.Before(s.AdmissionEndsAt) {
		return 0, ErrBadSession
	}
	mode := s.AdmissionMode
	if mode == "" {
		mode = AdmitManual
	}
	if err := checkMode(mode); err != nil {
		return 0, err
	}
	row := &store.ExamSession{ExamID: s.ExamID, Code: s.Code, Title: s.Title, StartsAt: s.StartsAt.UTC(), AdmissionEndsAt: s.AdmissionEndsAt.UTC(),
		EndsAt: s.EndsAt.UTC(), AdmissionMode: mode, CreatedAt: time.Now().UTC()}
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Take(&store.Exam{}, s.ExamID).Error; err != nil {
			return err
		}
		if err := tx.Create(row).Error; err != nil {
			return err
		}
		return tx.Create(&store.AuditEvent{At: time.Now().UTC(), ActorID: &actorID, Action: "session_created", ObjectType: "session",
			ObjectID: itoa(row.ID), Detail: string(mustJSON(s))}).Error
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return 0, fmt.Errorf("%w: the code %q is taken", ErrBadSession, s.Code)
	}
	return row.ID, err
}
