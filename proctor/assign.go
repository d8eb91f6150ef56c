package proctor

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
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
func AddInvigilator(ctx context.Context, db *store.DB, roomID, userID, adminID int64) error {
	var u store.User
	if err := db.WithContext(ctx).Take(&u, userID).Error; err != nil || u.Role != store.RoleInvigilator {
		return fmt.Errorf("%w: only an invigilator account can invigilate a room", ErrOneResponsible)
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&store.RoomInvigilator{RoomID: roomID, UserID: userID}).Error; err != nil {
			return err
		}
		return auditRoom(tx, adminID, "invigilator_added", roomID, userID)
	})
}

// auditRoom records an admin's change of a room's invigilators.
func auditRoom(tx *gorm.DB, adminID int64, action string, roomID, userID int64) error {
	d, _ := json.Marshal(map[string]int64{"user_id": userID})
	return tx.Create(&store.AuditEvent{At: time.Now().UTC(), ActorID: &adminID, Action: action, ObjectType: "room",
		ObjectID: strconv.FormatInt(roomID, 10), Detail: string(d)}).Error
}

// RemoveInvigilator takes an invigilator out of a room, unless that leaves
// the room with fewer than the minimum or their candidates unattended.
func RemoveInvigilator(ctx context.Context, db *store.DB, roomID, userID, adminID int64) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := roomRules(tx, roomID)
		if err != nil {
			return err
		}
		var invs, mine int64
		tx.Model(&store.RoomInvigilator{}).Where("room_id = ?", roomID).Count(&invs)
		if invs-1 < int64(r.MinPerRoom) {
			return fmt.Errorf("%w: it would leave %d", ErrTooFewInvigilators, invs-1)
		}
		tx.Model(&store.Seat{}).Where("room_id = ? AND invigilator_id = ?", roomID, userID).Count(&mine)
		if mine > 0 {
			return fmt.Errorf("%w: %d candidates are still assigned to this one; reassign them first", ErrOneResponsible, mine)
		}
		if err := tx.Where("room_id = ? AND user_id = ?", roomID, userID).Delete(&store.RoomInvigilator{}).Error; err != nil {
			return err
		}
		return auditRoom(tx, adminID, "invigilator_removed", roomID, userID)
	})
}

// Assign makes an invigilator of the seat's room responsible for its
// candidate, within the ratio.
func Assign(ctx context.Context, db *store.DB, seatID, invigilatorID int64) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var seat store.Seat
		if err := tx.Take(&seat, seatID).Error; err != nil {
			return err
		}
		r, err := roomRules(tx, seat.RoomID)
		if err != nil {
			return err
		}
		var in, load, invs int64
		tx.Model(&store.RoomInvigilator{}).Where("room_id = ? AND user_id = ?", seat.RoomID, invigilatorID).Count(&in)
		if in == 0 {
			return fmt.Errorf("%w: this one does not work in the candidate's room", ErrOneResponsible)
		}
		tx.Model(&store.RoomInvigilator{}).Where("room_id = ?", seat.RoomID).Count(&invs)
		if invs < int64(r.MinPerRoom) {
			return fmt.Errorf("%w: the room has %d", ErrTooFewInvigilators, invs)
		}
		tx.Model(&store.Seat{}).Where("invigilator_id = ? AND session_id = ? AND id <> ?", invigilatorID, seat.SessionID, seatID).Count(&load)
		if load+1 > int64(r.Ratio) {
			return fmt.Errorf("%w: this invigilator already has %d", ErrRatio, load)
		}
		return tx.Model(&seat).Update("invigilator_id", invigilatorID).Error
	})
}

// Balance spreads a room's candidates evenly over its invigilators.
func Balance(ctx context.Context, db *store.DB, roomID int64) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		r, err := roomRules(tx, roomID)
		if err != nil {
			return err
		}
		var invs []int64
		tx.Model(&store.RoomInvigilator{}).Where("room_id = ?", roomID).Order("user_id").Pluck("user_id", &invs)
		var seats []store.Seat
		tx.Where("room_id = ?", roomID).Order("seat_no").Find(&seats)
		if err := CheckRoom(len(seats), len(invs), r); err != nil {
			return err
		}
		for i, idx := range BalanceIndexes(len(seats), len(invs)) {
			if err := tx.Model(&seats[i]).Update("invigilator_id", invs[idx]).Error; err != nil {
				return err
			}
		}
		return nil
	})
}
