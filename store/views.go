package store

import (
	"context"
	"time"
)

// SeatView is a candidate's seat with its session and room, for their home page.
type SeatView struct {
	Ticket          string
	SeatNo          int
	SessionID       int64
	SessionTitle    string
	RoomCode        string
	RoomName        string
	StartsAt        time.Time
	AdmissionEndsAt time.Time
	EndsAt          time.Time
}

// SeatsOfCandidate lists a candidate's seats, soonest session first.
func (db *DB) SeatsOfCandidate(ctx context.Context, candidateID int64) ([]SeatView, error) {
	var vs []SeatView
	err := db.WithContext(ctx).Table("seats").
		Select("seats.ticket, seats.seat_no, exam_sessions.id AS session_id, exam_sessions.title AS session_title, "+
			"rooms.code AS room_code, rooms.name AS room_name, exam_sessions.starts_at, exam_sessions.admission_ends_at, exam_sessions.ends_at").
		Joins("JOIN rooms ON rooms.id = seats.room_id").
		Joins("JOIN exam_sessions ON exam_sessions.id = seats.session_id").
		Where("seats.candidate_id = ?", candidateID).
		Order("exam_sessions.starts_at").Scan(&vs).Error
	return vs, translate(err)
}

// RoomView is a room an invigilator works in, with how many of its
// candidates they are responsible for.
type RoomView struct {
	RoomID       int64
	RoomCode     string
	RoomName     string
	SessionID    int64
	SessionTitle string
	StartsAt     time.Time
	EndsAt       time.Time
	Assigned     int
	Candidates   int
}

// RoomsOfInvigilator lists the rooms an invigilator works in.
func (db *DB) RoomsOfInvigilator(ctx context.Context, userID int64) ([]RoomView, error) {
	var vs []RoomView
	err := db.WithContext(ctx).Table("room_invigilators").
		Select("rooms.id AS room_id, rooms.code AS room_code, rooms.name AS room_name, "+
			"exam_sessions.id AS session_id, exam_sessions.title AS session_title, exam_sessions.starts_at, exam_sessions.ends_at, "+
			"(SELECT COUNT(*) FROM seats WHERE seats.room_id = rooms.id AND seats.invigilator_id = ?) AS assigned, "+
			"(SELECT COUNT(*) FROM seats WHERE seats.room_id = rooms.id) AS candidates", userID).
		Joins("JOIN rooms ON rooms.id = room_invigilators.room_id").
		Joins("JOIN exam_sessions ON exam_sessions.id = rooms.session_id").
		Where("room_invigilators.user_id = ?", userID).
		Order("exam_sessions.starts_at, rooms.code").Scan(&vs).Error
	return vs, translate(err)
}
