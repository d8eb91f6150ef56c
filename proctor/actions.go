package proctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// CanSee returns an attempt's info if u may watch and act on it: an admin
// always; an invigilator for the candidates they are responsible for; a
// chief invigilator for every candidate of a session they work in.
func (s *Service) CanSee(ctx context.Context, u *store.User, attemptID int64) (*AttemptInfo, error) {
	info, err := s.Info(ctx, attemptID)
	if err != nil {
		return nil, err
	}
	switch {
	case u.Role == store.RoleAdmin:
		return info, nil
	case u.Role != store.RoleInvigilator:
		return nil, ErrNotYours
	case info.InvigilatorID != nil && *info.InvigilatorID == u.ID:
		return info, nil
	case u.Chief:
		if ok, err := s.worksIn(ctx, u.ID, info.SessionID); err != nil || ok {
			return info, err
		}
	}
	return nil, ErrNotYours
}

func (s *Service) worksIn(ctx context.Context, userID, sessionID int64) (bool, error) {
	var n int64
	err := s.db.WithContext(ctx).Table("room_invigilators").Joins("JOIN rooms ON rooms.id = room_invigilators.room_id").
		Where("room_invigilators.user_id = ? AND rooms.session_id = ?", userID, sessionID).Count(&n).Error
	return n > 0, err
}

// RoomScope says what u sees of a room: every candidate (all) or only the
// ones they are responsible for.
func (s *Service) RoomScope(ctx context.Context, u *store.User, roomID int64) (all bool, err error) {
	var room store.Room
	if err := s.db.WithContext(ctx).Take(&room, roomID).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return false, ErrNotYours
		}
		return false, err
	}
	switch u.Role {
	case store.RoleAdmin:
		return true, nil
	case store.RoleInvigilator:
		var n int64
		if err := s.db.WithContext(ctx).Model(&store.RoomInvigilator{}).Where("room_id = ? AND user_id = ?", roomID, u.ID).Count(&n).Error; err != nil {
			return false, err
		}
		if n > 0 {
			return u.Chief, nil
		}
		if u.Chief {
			if ok, err := s.worksIn(ctx, u.ID, room.SessionID); err != nil || ok {
				return true, err
			}
		}
	}
	return false, ErrNotYours
}

// RoomRef names a room a user may open.
type RoomRef struct {
	RoomID       int64     `json:"room_id"`
	RoomName     string    `json:"room_name"`
	SessionID    int64     `json:"session_id"`
	SessionTitle string    `json:"session_title"`
	StartsAt     time.Time `json:"starts_at"`
	EndsAt       time.Time `json:"ends_at"`
}

// Rooms lists the rooms u may open: their own; every room of their sessions
// for a chief; all for an admin.
func (s *Service) Rooms(ctx context.Context, u *store.User) ([]RoomRef, error) {
	q := s.db.WithContext(ctx).Table("rooms").
		Select("rooms.id AS room_id, rooms.name AS room_name, exam_sessions.id AS session_id, exam_sessions.title AS session_title, exam_sessions.starts_at, exam_sessions.ends_at").
		Joins("JOIN exam_sessions ON exam_sessions.id = rooms.session_id").Order("exam_sessions.starts_at DESC, rooms.code")
	switch {
	case u.Role == store.RoleAdmin:
	case u.Role == store.RoleInvigilator && u.Chief:
		q = q.Where("rooms.session_id IN (SELECT r.session_id FROM rooms r JOIN room_invigilators ri ON ri.room_id = r.id WHERE ri.user_id = ?)", u.ID)
	case u.Role == store.RoleInvigilator:
		q = q.Where("rooms.id IN (SELECT room_id FROM room_invigilators WHERE user_id = ?)", u.ID)
	default:
		return nil, ErrNotYours
	}
	var out []RoomRef
	err := q.Limit(500).Scan(&out).Error
	return out, err
}

// CandidateView is one tile of the console.
type CandidateView struct {
	AttemptInfo
	Status    string         `json:"status"`
	Deadline  *time.Time     `json:"deadline"`
	Answered  int            `json:"answered"`
	Questions int            `json:"questions"`
	Connected bool           `json:"connected"`
	Warnings  int            `json:"warnings"`
	Unacked   int            `json:"unacked_messages"`
	Open      map[string]int `json:"open_flags"`
	Risk      int            `json:"risk"`
}

// RoomView is what the console shows of a room.
type RoomView struct {
	RoomID     int64           `json:"room_id"`
	Candidates []CandidateView `json:"candidates"`
	ServerNow  time.Time       `json:"server_now"`
	All        bool            `json:"all"`
}

// risk weighs a candidate's open flags, to sort the grid by live risk.
var riskWeight = map[string]int{string(Critical): 10, string(Warning): 3, string(Info): 1}

// Room is the console's view of a room for u.
func (s *Service) Room(ctx context.Context, u *store.User, roomID int64) (*RoomView, error) {
	all, err := s.RoomScope(ctx, u, roomID)
	if err != nil {
		return nil, err
	}
	infos, err := s.roomAttempts(ctx, u, roomID, all)
	if err != nil {
		return nil, err
	}
	v := &RoomView{RoomID: roomID, ServerNow: s.now(), All: all, Candidates: make([]CandidateView, 0, len(infos))}
	if len(infos) == 0 {
		return v, nil
	}
	ids := make([]int64, len(infos))
	for i, in := range infos {
		ids[i] = in.AttemptID
	}
	answered, err := s.answeredCounts(ctx, ids)
	if err != nil {
		return nil, err
	}
	open, err := s.openFlags(ctx, ids)
	if err != nil {
		return nil, err
	}
	unacked, warnings, err := s.messageCounts(ctx, ids)
	if err != nil {
		return nil, err
	}
	for _, in := range infos {
		var p struct {
			Items []json.RawMessage `json:"items"`
		}
		json.Unmarshal([]byte(in.Paper), &p)
		c := CandidateView{AttemptInfo: in.AttemptInfo, Status: in.Status, Deadline: in.Deadline, Answered: answered[in.AttemptID],
			Questions: len(p.Items), Connected: s.Connected(in.AttemptID), Open: open[in.AttemptID],
			Unacked: unacked[in.AttemptID], Warnings: warnings[in.AttemptID]}
		if c.Open == nil {
			c.Open = map[string]int{}
		}
		for sev, n := range c.Open {
			c.Risk += riskWeight[sev] * n
		}
		v.Candidates = append(v.Candidates, c)
	}
	return v, nil
}

// roomAttempt is an attempt of a room as the console's query reads it.
type roomAttempt struct {
	AttemptInfo
	Status   string
	Deadline *time.Time
	Paper    string
}

// roomAttempts reads the attempts of a room by seat number: all of them, or
// only those u is responsible for.
func (s *Service) roomAttempts(ctx context.Context, u *store.User, roomID int64, all bool) ([]roomAttempt, error) {
	var infos []roomAttempt
	q := s.db.WithContext(ctx).Table("attempts").
		Select(`attempts.id AS attempt_id, attempts.exam_id, attempts.session_id, attempts.candidate_id, users.display_name AS name,
			seats.ticket, seats.seat_no, seats.room_id, rooms.name AS room_name, seats.invigilator_id, attempts.status, attempts.deadline, attempts.paper`).
		Joins("JOIN seats ON seats.id = attempts.seat_id").
		Joins("JOIN users ON users.id = attempts.candidate_id").
		Joins("JOIN rooms ON rooms.id = seats.room_id").
		Where("seats.room_id = ?", roomID).Order("seats.seat_no")
	if !all {
		q = q.Where("seats.invigilator_id = ?", u.ID)
	}
	if err := q.Scan(&infos).Error; err != nil {
		return nil, err
	}
	return infos, nil
}

// answeredCounts counts the questions each attempt has answered.
func (s *Service) answeredCounts(ctx context.Context, ids []int64) (map[int64]int, error) {
	answered := map[int64]int{}
	var counts []struct {
		AttemptID int64
		N         int
	}
	if err := s.db.WithContext(ctx).Table("answers").Select("attempt_id, COUNT(*) AS n").Where("attempt_id IN ? AND value <> '[]'", ids).Group("attempt_id").Scan(&counts).Error; err != nil {
		return nil, fmt.Errorf("answers of the room: %w", err)
	}
	for _, c := range counts {
		answered[c.AttemptID] = c.N
	}
	return answered, nil
}

// openFlags counts each attempt's open flags by severity.
func (s *Service) openFlags(ctx context.Context, ids []int64) (map[int64]map[string]int, error) {
	var flags []struct {
		AttemptID int64
		Severity  string
		N         int
	}
	if err := s.db.WithContext(ctx).Table("flags").Select("attempt_id, severity, COUNT(*) AS n").Where("attempt_id IN ? AND status = 'open'", ids).Group("attempt_id, severity").Scan(&flags).Error; err != nil {
		return nil, fmt.Errorf("flags of the room: %w", err)
	}
	open := map[int64]map[string]int{}
	for _, f := range flags {
		if open[f.AttemptID] == nil {
			open[f.AttemptID] = map[string]int{}
		}
		open[f.AttemptID][f.Severity] = f.N
	}
	return open, nil
}

// messageCounts counts, for each attempt, the messages and warnings not yet
// acknowledged and the warnings sent.
func (s *Service) messageCounts(ctx context.Context, ids []int64) (unacked, warnings map[int64]int, err error) {
	var msgs []struct {
		AttemptID int64
		Kind      string
		Unacked   int
		N         int
	}
	err = s.db.WithContext(ctx).Table("proctor_messages").Select("attempt_id, kind, SUM(CASE WHEN acked_at IS NULL THEN 1 ELSE 0 END) AS unacked, COUNT(*) AS n").
		Where("attempt_id IN ?", ids).Group("attempt_id, kind").Scan(&msgs).Error
	if err != nil {
		return nil, nil, fmt.Errorf("messages of the room: %w", err)
	}
	unacked, warnings = map[int64]int{}, map[int64]int{}
	for _, m := range msgs {
		unacked[m.AttemptID] += m.Unacked
		if m.Kind == "warning" {
			warnings[m.AttemptID] += m.N
		}
	}
	return unacked, warnings, nil
}

// MessageView is a message or warning as the candidate's page gets it.
type MessageView struct {
	Type     string    `json:"type"`
	ID       int64     `json:"id"`
	Kind     string    `json:"kind"`
	Body     string    `json:"body"`
	SentAt   time.Time `json:"sent_at"`
	Warnings int       `json:"warnings"`
}

// Message sends a message ("message") or a formal warning ("warning") to a
// candidate; the candidate must acknowledge it.
func (s *Service) Message(ctx context.Context, u *store.User, attemptID int64, kind, body string) (*store.ProctorMessage, error) {
	if kind != "message" && kind != "warning" {
		return nil, fmt.Errorf("%w: kind is message or warning", ErrBadAction)
	}
	body = clean(body, 500)
	if body == "" {
		return nil, fmt.Errorf("%w: the message is empty", ErrBadAction)
	}
	if _, err := s.CanSee(ctx, u, attemptID); err != nil {
		return nil, err
	}
	m := &store.ProctorMessage{AttemptID: attemptID, SenderID: u.ID, Kind: kind, Body: body, SentAt: s.now()}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(m).Error; err != nil {
			return err
		}
		return s.audit(tx, u.ID, "proctor_"+kind, "attempt", attemptID, map[string]any{"message_id": m.ID, "body": body})
	})
	if err != nil {
		return nil, err
	}
	// Stored is sent: a page that misses it now gets it on reconnecting.
	if err := s.deliver(ctx, m); err != nil {
		s.log.Warn("proctor message stored, not yet delivered", "attempt", attemptID, "err", err)
	}
	return m, nil
}

// deliver sends a message to the candidate's page, with the number of
// warnings they have had so far.
func (s *Service) deliver(ctx context.Context, m *store.ProctorMessage) error {
	var warnings int64
	if err := s.db.WithContext(ctx).Model(&store.ProctorMessage{}).Where("attempt_id = ? AND kind = 'warning' AND id <= ?", m.AttemptID, m.ID).Count(&warnings).Error; err != nil {
		return err
	}
	s.publish(CandidateTopic, CandidateMsg{AttemptID: m.AttemptID, Payload: MessageView{Type: "proctor_message", ID: m.ID, Kind: m.Kind,
		Body: m.Body, SentAt: m.SentAt, Warnings: int(warnings)}})
	return nil
}

// Redeliver sends a candidate's unacknowledged messages again (on connecting).
func (s *Service) Redeliver(ctx context.Context, attemptID int64) error {
	var ms []store.ProctorMessage
	if err := s.db.WithContext(ctx).Where("attempt_id = ? AND acked_at IS NULL", attemptID).Order("id").Find(&ms).Error; err != nil {
		return err
	}
	for i := range ms {
		if err := s.deliver(ctx, &ms[i]); err != nil {
			return err
		}
	}
	return nil
}

// Ack records that the candidate acknowledged a message of their attempt.
func (s *Service) Ack(ctx context.Context, attemptID, messageID int64) error {
	now := s.now()
	res := s.db.WithContext(ctx).Model(&store.ProctorMessage{}).Where("id = ? AND attempt_id = ? AND acked_at IS NULL", messageID, attemptID).Update("acked_at", now)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		var n int64
		if err := s.db.WithContext(ctx).Model(&store.ProctorMessage{}).Where("id = ? AND attempt_id = ?", messageID, attemptID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrNoMessage
		}
		return nil // acknowledged before
	}
	s.publish(ActivityTopic, Activity{Type: "message_ack", AttemptID: attemptID, MessageID: messageID, At: now})
	return nil
}

// Decide confirms or dismisses a flag with a note.
func (s *Service) Decide(ctx context.Context, u *store.User, flagID int64, decision, note string) (*FlagView, error) {
	status := map[string]string{"confirm": "confirmed", "dismiss": "dismissed"}[decision]
	if status == "" {
		return nil, fmt.Errorf("%w: decision is confirm or dismiss", ErrBadAction)
	}
	var f store.Flag
	if err := s.db.WithContext(ctx).Take(&f, flagID).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNotYours
		}
		return nil, err
	}
	// Reviewers decide flags after the exam; invigilators their own candidates'.
	var info *AttemptInfo
	var err error
	if u.Role == store.RoleReviewer {
		info, err = s.Info(ctx, f.AttemptID)
	} else {
		info, err = s.CanSee(ctx, u, f.AttemptID)
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	note = clean(note, 1000)
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&f).Updates(map[string]any{"status": status, "note": note, "decided_by": u.ID, "decided_at": now}).Error; err != nil {
			return err
		}
		return s.audit(tx, u.ID, "flag_"+status, "flag", f.ID, map[string]any{"attempt": f.AttemptID, "note": note})
	})
	if err != nil {
		return nil, err
	}
	f.Status, f.Note, f.DecidedBy, f.DecidedAt = status, note, &u.ID, &now
	v := viewOf(&f)
	s.publish(FlagTopic, FlagEvent{Flag: v, RoomID: info.RoomID, InvigilatorID: info.InvigilatorID, SessionID: info.SessionID, Received: time.Now()})
	return &v, nil
}

// Terminate ends an attempt for cheating; the candidate is told the reason.
func (s *Service) Terminate(ctx context.Context, u *store.User, attemptID int64, why string) error {
	why = clean(why, 500)
	if why == "" {
		return fmt.Errorf("%w: ending an attempt needs a reason", ErrBadAction)
	}
	if _, err := s.CanSee(ctx, u, attemptID); err != nil {
		return err
	}
	if err := s.cfg.Terminator.Terminate(ctx, attemptID, why); err != nil {
		return err
	}
	return s.audit(s.db.WithContext(ctx), u.ID, "attempt_terminated", "attempt", attemptID, map[string]any{"reason": why})
}

func (s *Service) audit(tx *gorm.DB, actor int64, action, objType string, objID int64, detail any) error {
	d, _ := json.Marshal(detail)
	return tx.Create(&store.AuditEvent{At: s.now(), ActorID: &actor, Action: action, ObjectType: objType, ObjectID: strconv.FormatInt(objID, 10), Detail: string(d)}).Error
}

// Admit lets u's candidate start the exam; force admits one with steps
// still to do. The candidate's page is told at once.
func (s *Service) Admit(ctx context.Context, u *store.User, attemptID int64, force bool) error {
	if _, err := s.CanSee(ctx, u, attemptID); err != nil {
		return err
	}
	if err := s.cfg.Admitter.Admit(ctx, attemptID, u.ID, force); err != nil {
		return err
	}
	s.publish(CandidateTopic, CandidateMsg{AttemptID: attemptID, Payload: map[string]any{"type": "admission", "state": "admitted"}})
	return s.audit(s.db.WithContext(ctx), u.ID, "candidate_admitted", "attempt", attemptID, map[string]any{"forced": force})
}

// AdmitReady admits every candidate of a room that u looks after who
// finished every step and waits (an invigilator's "admit the room"). It
// leaves alone those refused, already admitted or with steps left, and
// says how many it admitted.
func (s *Service) AdmitReady(ctx context.Context, u *store.User, roomID int64) (int, error) {
	v, err := s.Room(ctx, u, roomID)
	if err != nil {
		return 0, err
	}
	var waiting []int64
	for _, c := range v.Candidates {
		if c.Status == "not_started" {
			waiting = append(waiting, c.AttemptID)
		}
	}
	ready, err := s.cfg.Admitter.ReadyToAdmit(ctx, waiting)
	if err != nil {
		return 0, err
	}
	for i, id := range ready {
		if err := s.Admit(ctx, u, id, false); err != nil {
			return i, err
		}
	}
	return len(ready), nil
}

// Refuse keeps u's candidate out, with a reason the candidate sees.
func (s *Service) Refuse(ctx context.Context, u *store.User, attemptID int64, reason string) error {
	reason = clean(reason, 500)
	if reason == "" {
		return fmt.Errorf("%w: a refusal needs a reason", ErrBadAction)
	}
	if _, err := s.CanSee(ctx, u, attemptID); err != nil {
		return err
	}
	if err := s.cfg.Admitter.Refuse(ctx, attemptID, u.ID, reason); err != nil {
		return err
	}
	s.publish(CandidateTopic, CandidateMsg{AttemptID: attemptID, Payload: map[string]any{"type": "admission", "state": "refused", "reason": reason}})
	return s.audit(s.db.WithContext(ctx), u.ID, "candidate_refused", "attempt", attemptID, map[string]any{"reason": reason})
}

// MayIdentify says whether u may see an attempt's identity still and the
// candidate's registered photo: the candidate's invigilators, a chief and
// an admin (who admit them), and reviewers (who rule on the attempt).
func (s *Service) MayIdentify(ctx context.Context, u *store.User, attemptID int64) error {
	if u.Role != store.RoleReviewer {
		_, err := s.CanSee(ctx, u, attemptID)
		return err
	}
	var n int64
	if err := s.cfg.DB.WithContext(ctx).Model(&store.Attempt{}).Where("id = ?", attemptID).Count(&n).Error; err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// MayWatch says whether u may watch an attempt's recordings: admins and
// reviewers any attempt's; an invigilator those they may see, while the
// attempt is in progress.
func (s *Service) MayWatch(ctx context.Context, u *store.User, attemptID int64) error {
	switch u.Role {
	case store.RoleAdmin, store.RoleReviewer:
		var n int64
		if err := s.cfg.DB.WithContext(ctx).Model(&store.Attempt{}).Where("id = ?", attemptID).Count(&n).Error; err != nil || n == 0 {
			return store.ErrNotFound
		}
		return nil
	case store.RoleInvigilator:
		if _, err := s.CanSee(ctx, u, attemptID); err != nil {
			return err
		}
		var a store.Attempt
		if err := s.cfg.DB.WithContext(ctx).Select("status").Take(&a, attemptID).Error; err != nil {
			return err
		}
		if a.Status != "in_progress" {
			return ErrNotYours
		}
		return nil
	}
	return ErrNotYours
}
