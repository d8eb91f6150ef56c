package exam

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// Notices the exam domain queues (store.Enqueue), each in the transaction
// of its event: a seat's message when it is assigned (or, in bulk, when an
// admin sends a session's), reminders before the session, and a refused
// admission.

// seatRow is what a seat's messages say.
type seatRow struct {
	SeatID      int64
	CandidateID int64
	Ticket      string
	Room        string
	AttemptID   int64
	SessionID   int64
	StartsAt    time.Time
	EndsAt      time.Time
	TitleZh     string
	TitleEn     string
	Programme   string
}

// seatRows reads the seats of a session (those listed, or all), with the
// attempt drawn for each.
func seatRows(ctx context.Context, tx *gorm.DB, sessionID int64, seatIDs []int64) ([]seatRow, error) {
	q := tx.WithContext(ctx).Table("seats").Select(`seats.id AS seat_id, seats.candidate_id, seats.ticket, rooms.name AS room,
		COALESCE(attempts.id, 0) AS attempt_id, exam_sessions.id AS session_id, exam_sessions.starts_at, exam_sessions.ends_at,
		exams.title_zh, exams.title_en, programmes.name_zh AS programme`).
		Joins("JOIN rooms ON rooms.id = seats.room_id").
		Joins("JOIN exam_sessions ON exam_sessions.id = seats.session_id").
		Joins("JOIN exams ON exams.id = exam_sessions.exam_id").
		Joins("JOIN programmes ON programmes.id = exams.programme_id").
		Joins("LEFT JOIN attempts ON attempts.seat_id = seats.id").
		Where("seats.session_id = ?", sessionID)
	if len(seatIDs) > 0 {
		q = q.Where("seats.id IN ?", seatIDs)
	}
	var rows []seatRow
	return rows, q.Order("seats.id").Scan(&rows).Error
}

// seatParams are the texts' parameters common to a seat's messages.
func (r seatRow) params() map[string]string {
	return map[string]string{"programme": r.Programme, "exam": r.TitleZh + " / " + r.TitleEn,
		"session_time": store.NoticeTime(r.StartsAt), "room": r.Room, "ticket": r.Ticket}
}

// examLink opens the attempt's lobby once, until the session ends.
func (r seatRow) examLink() store.NoticeLink {
	return store.NoticeLink{Param: "exam_link", Target: "/exam?attempt=" + strconv.FormatInt(r.AttemptID, 10), ExpiresAt: r.EndsAt}
}

// mockLink opens the candidate's home, where the mock test starts, once,
// until the session starts.
func (r seatRow) mockLink() store.NoticeLink {
	return store.NoticeLink{Param: "mock_link", Target: "/#mock", ExpiresAt: r.StartsAt}
}

// SeatNotices are the seat messages of a session's seats (those listed, or
// all): the exam, its time and room, the ticket, one-time links to the mock
// test and to the exam's lobby, and the session as a calendar event. Each
// seat must have its attempt drawn (ScheduleSession).
func SeatNotices(ctx context.Context, tx *gorm.DB, sessionID int64, seatIDs []int64, batch string) ([]store.Notice, error) {
	rows, err := seatRows(ctx, tx, sessionID, seatIDs)
	if err != nil {
		return nil, err
	}
	out := make([]store.Notice, 0, len(rows))
	for _, r := range rows {
		if r.AttemptID == 0 {
			return nil, fmt.Errorf("%w: seat %d has no paper drawn yet", ErrNotScheduled, r.SeatID)
		}
		ev := &store.NoticeEvent{UID: fmt.Sprintf("seat-%d@examhall", r.SeatID), Start: r.StartsAt, End: r.EndsAt,
			Summary: r.TitleZh + " / " + r.TitleEn, Location: r.Room}
		out = append(out, store.Notice{UserID: r.CandidateID, Kind: "seat_assigned", Batch: batch,
			Data: store.NoticeData{Params: r.params(), Links: []store.NoticeLink{r.mockLink(), r.examLink()}, Event: ev}})
	}
	return out, nil
}

// ErrNotScheduled: a seat's message needs its paper drawn first.
var ErrNotScheduled = store.NewError("exam", store.Conflict, "not_scheduled", "draw the session's papers before sending its seat messages")

// NotifySeats queues the seat message of every seat of a session, as the
// admin's act, and returns the batch that follows their sending and how
// many messages were queued. Queueing does not wait for the sending: the
// sender drains the outbox at its own rate.
func (e *Engine) NotifySeats(ctx context.Context, sessionID, adminID int64) (string, int, error) {
	now := e.now()
	batch := fmt.Sprintf("seats:%d:%d", sessionID, now.UnixNano())
	var n int
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		notices, err := SeatNotices(ctx, tx, sessionID, nil, batch)
		if err != nil {
			return err
		}
		if n, err = store.Enqueue(ctx, tx, now, notices...); err != nil {
			return err
		}
		return tx.Create(&store.AuditEvent{At: now, ActorID: &adminID, Action: "seat_messages_queued", ObjectType: "session",
			ObjectID: itoa(sessionID), Detail: string(mustJSON(map[string]any{"batch": batch, "messages": n}))}).Error
	})
	return batch, n, err
}

// Reminders before a session, by how long before its start they go; a
// seat gets each at most once (the outbox's dedupe key).
const (
	mockReminderBefore = 72 * time.Hour // if no mock test has been taken
	dayReminderBefore  = 24 * time.Hour
	hourReminderBefore = time.Hour
)

// QueueReminders queues the reminders that are due at now: the mock-test
// reminder (to candidates who have not finished a mock test), the day's and
// the hour's. It is safe on every node at once. It returns how many
// messages were queued.
func (e *Engine) QueueReminders(ctx context.Context, now time.Time) (int, error) {
	var sessions []store.ExamSession
	if err := e.db.WithContext(ctx).Where("starts_at > ? AND starts_at <= ?", now, now.Add(mockReminderBefore)).Find(&sessions).Error; err != nil {
		return 0, err
	}
	total := 0
	for _, s := range sessions {
		n, err := e.remindSession(ctx, s, now)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// remindSession queues the reminders of one session due at now, each kind
// once for the session (a seat added later has its seat message).
func (e *Engine) remindSession(ctx context.Context, s store.ExamSession, now time.Time) (int, error) {
	left := s.StartsAt.Sub(now)
	var due []string
	if left <= hourReminderBefore {
		due = append(due, "reminder_hour")
	} else if left <= dayReminderBefore {
		due = append(due, "reminder_day")
	} else {
		due = append(due, "mock_reminder")
	}
	var n int
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for _, kind := range due {
			fresh, err := store.Mark(ctx, tx, fmt.Sprintf("%s:%d", kind, s.ID), now)
			if err != nil || !fresh {
				return err
			}
			notices, err := reminders(ctx, tx, s.ID, kind)
			if err != nil {
				return err
			}
			m, err := store.Enqueue(ctx, tx, now, notices...)
			if err != nil {
				return err
			}
			n += m
		}
		return nil
	})
	return n, err
}

// reminders are one kind of reminder for the seats of a session; the mock
// test's only to those who have not finished one.
func reminders(ctx context.Context, tx *gorm.DB, sessionID int64, kind string) ([]store.Notice, error) {
	rows, err := seatRows(ctx, tx, sessionID, nil)
	if err != nil {
		return nil, err
	}
	mocked, err := mockTakers(ctx, tx, rows)
	if err != nil {
		return nil, err
	}
	var out []store.Notice
	for _, r := range rows {
		if r.AttemptID == 0 || kind == "mock_reminder" && mocked[r.CandidateID] {
			continue
		}
		link := r.examLink()
		if kind == "mock_reminder" {
			link = r.mockLink()
		}
		out = append(out, store.Notice{UserID: r.CandidateID, Kind: kind, Data: store.NoticeData{Params: r.params(), Links: []store.NoticeLink{link}}})
	}
	return out, nil
}

// mockTakers says which of the seats' candidates have finished a mock test.
func mockTakers(ctx context.Context, tx *gorm.DB, rows []seatRow) (map[int64]bool, error) {
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.CandidateID
	}
	var done []int64
	err := tx.WithContext(ctx).Model(&store.Attempt{}).Where("candidate_id IN ? AND kind = ? AND status IN ?", ids, KindMock,
		[]string{StatusSubmitted, StatusAutoSubmitted}).Distinct().Pluck("candidate_id", &done).Error
	if err != nil {
		return nil, err
	}
	out := map[int64]bool{}
	for _, id := range done {
		out[id] = true
	}
	return out, nil
}

// refusedNotice queues the message that tells a candidate why they were
// not admitted.
func refusedNotice(ctx context.Context, tx *gorm.DB, attemptID int64, reason string, now time.Time) error {
	var a store.Attempt
	if err := tx.WithContext(ctx).Select("id, seat_id, session_id, candidate_id").Take(&a, attemptID).Error; err != nil {
		return err
	}
	if a.SeatID == nil || a.SessionID == nil {
		return nil // a mock test has no admission
	}
	rows, err := seatRows(ctx, tx, *a.SessionID, []int64{*a.SeatID})
	if err != nil || len(rows) == 0 {
		return err
	}
	p := rows[0].params()
	p["reason"] = reason
	_, err = store.Enqueue(ctx, tx, now, store.Notice{UserID: a.CandidateID, Kind: "admission_refused", Data: store.NoticeData{Params: p}})
	return err
}
