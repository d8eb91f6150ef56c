package proctor

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// roomRules reads the invigilation rules of a room's programme.
func roomRules(tx *gorm.DB, roomID int64) (Invigilation, error) {
	var rules string
	err := tx.Table("rooms").Select("programmes.rules").
		Joins("JOIN exam_sessions ON exam_sessions.id = rooms.session_id").
		Joins("JOIN exams ON exams.id = exam_sessions.exam_id").
		Joins("JOIN programmes ON programmes.id = exams.programme_id").
		Where("rooms.id = ?", roomID).Row().Scan(&rules)
	if err != nil {
		return Invigilation{}, err
	}
	r := DefaultInvigilation
	json.Unmarshal([]byte(rules), &r)
	return r, validRules(r)
}

// AddInvigilator puts an invigilator in a room, audited as the admin's act.
func (s *Service) AddInvigilator(ctx context.Context, roomID, userID, adminID int64) error {
	var u store.User
	if err := s.db.WithContext(ctx).Take(&u, userID).Error; err != nil || u.Role != store.RoleInvigilator {
		return fmt.Errorf("%w: only an invigilator account can invigilate a room", ErrOneResponsible)
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&store.RoomInvigilator{RoomID: roomID, UserID: userID}).Error; err != nil {
			return err
		}
		if err := s.audit(tx, adminID, "invigilator_added", "room", roomID, map[string]int64{"user_id": userID}); err != nil {
			return err
		}
		return s.invigilatorNotice(ctx, tx, roomID, userID)
	})
}

// invigilatorNotice tells an invigilator which room of which session they
// work in.
func (s *Service) invigilatorNotice(ctx context.Context, tx *gorm.DB, roomID, userID int64) error {
	var r struct {
		Room, TitleZh, TitleEn, Programme string
		StartsAt                          time.Time
	}
	err := tx.Table("rooms").Select("rooms.name AS room, exams.title_zh, exams.title_en, programmes.name_zh AS programme, exam_sessions.starts_at").
		Joins("JOIN exam_sessions ON exam_sessions.id = rooms.session_id").
		Joins("JOIN exams ON exams.id = exam_sessions.exam_id").
		Joins("JOIN programmes ON programmes.id = exams.programme_id").
		Where("rooms.id = ?", roomID).Scan(&r).Error
	if err != nil {
		return err
	}
	_, err = store.Enqueue(ctx, tx, s.now(), store.Notice{UserID: userID, Kind: "invigilator_assigned", Data: store.NoticeData{Params: map[string]string{
		"programme": r.Programme, "exam": r.TitleZh + " / " + r.TitleEn, "session_time": store.NoticeTime(r.StartsAt), "room": r.Room}}})
	return err
}

// RemoveInvigilator takes an invigilator out of a room, unless that leaves
// the room with fewer than the minimum or their candidates unattended;
// audited as the admin's act.
func (s *Service) RemoveInvigilator(ctx context.Context, roomID, userID, adminID int64) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := roomRules(tx, roomID)
		if err != nil {
			return err
		}
		var invs, mine int64
		if err := tx.Model(&store.RoomInvigilator{}).Where("room_id = ?", roomID).Count(&invs).Error; err != nil {
			return err
		}
		if invs-1 < int64(r.MinPerRoom) {
			return fmt.Errorf("%w: it would leave %d", ErrTooFewInvigilators, invs-1)
		}
		if err := tx.Model(&store.Seat{}).Where("room_id = ? AND invigilator_id = ?", roomID, userID).Count(&mine).Error; err != nil {
			return err
		}
		if mine > 0 {
			return fmt.Errorf("%w: %d candidates are still assigned to this one; reassign them first", ErrOneResponsible, mine)
		}
		if err := tx.Where("room_id = ? AND user_id = ?", roomID, userID).Delete(&store.RoomInvigilator{}).Error; err != nil {
			return err
		}
		return s.audit(tx, adminID, "invigilator_removed", "room", roomID, map[string]int64{"user_id": userID})
	})
}

// Assign makes an invigilator of the seat's room responsible for its
// candidate, within the ratio; audited as the admin's act.
func (s *Service) Assign(ctx context.Context, seatID, invigilatorID, adminID int64) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var seat store.Seat
		if err := tx.Take(&seat, seatID).Error; err != nil {
			return err
		}
		r, err := roomRules(tx, seat.RoomID)
		if err != nil {
			return err
		}
		var in, load, invs int64
		if err := tx.Model(&store.RoomInvigilator{}).Where("room_id = ? AND user_id = ?", seat.RoomID, invigilatorID).Count(&in).Error; err != nil {
			return err
		}
		if in == 0 {
			return fmt.Errorf("%w: this one does not work in the candidate's room", ErrOneResponsible)
		}
		if err := tx.Model(&store.RoomInvigilator{}).Where("room_id = ?", seat.RoomID).Count(&invs).Error; err != nil {
			return err
		}
		if invs < int64(r.MinPerRoom) {
			return fmt.Errorf("%w: the room has %d", ErrTooFewInvigilators, invs)
		}
		if err := tx.Model(&store.Seat{}).Where("invigilator_id = ? AND session_id = ? AND id <> ?", invigilatorID, seat.SessionID, seatID).Count(&load).Error; err != nil {
			return err
		}
		if load+1 > int64(r.Ratio) {
			return fmt.Errorf("%w: this invigilator already has %d", ErrRatio, load)
		}
		if err := tx.Model(&seat).Update("invigilator_id", invigilatorID).Error; err != nil {
			return err
		}
		return s.audit(tx, adminID, "candidate_assigned", "seat", seatID, map[string]int64{"user_id": invigilatorID})
	})
}

// Balance spreads a room's candidates evenly over its invigilators;
// audited as the admin's act.
func (s *Service) Balance(ctx context.Context, roomID, adminID int64) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := roomRules(tx, roomID)
		if err != nil {
			return err
		}
		var invs []int64
		if err := tx.Model(&store.RoomInvigilator{}).Where("room_id = ?", roomID).Order("user_id").Pluck("user_id", &invs).Error; err != nil {
			return err
		}
		var seats []store.Seat
		if err := tx.Where("room_id = ?", roomID).Order("seat_no").Find(&seats).Error; err != nil {
			return err
		}
		if err := CheckRoom(len(seats), len(invs), r); err != nil {
			return err
		}
		for i, idx := range BalanceIndexes(len(seats), len(invs)) {
			if err := tx.Model(&seats[i]).Update("invigilator_id", invs[idx]).Error; err != nil {
				return err
			}
		}
		return s.audit(tx, adminID, "room_balanced", "room", roomID, map[string]int{"candidates": len(seats)})
	})
}
