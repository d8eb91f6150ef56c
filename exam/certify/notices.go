package certify

import (
	"context"
	"fmt"
	"strconv"

	"gorm.io/gorm"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/i18n"
)

// The certificate path's notices (store.Enqueue), each queued in the
// transaction of its event: a registration received, a fee confirmed, a
// seat assigned (exam.SeatNotices), a panel assignment, a result, a retake
// that may be asked for, a certificate issued.

// regNotice queues a notice about a registration to its candidate, with
// the programme's and the level's names.
func (s *Service) regNotice(ctx context.Context, tx *gorm.DB, regID int64, kind string, params map[string]string) error {
	var r struct {
		CandidateID        int64
		Programme, LevelZh string
		LevelEn            string
	}
	err := tx.WithContext(ctx).Table("registrations").Select("registrations.candidate_id, programmes.name_zh AS programme, levels.name_zh AS level_zh, levels.name_en AS level_en").
		Joins("JOIN levels ON levels.id = registrations.level_id").
		Joins("JOIN programmes ON programmes.id = levels.programme_id").
		Where("registrations.id = ?", regID).Scan(&r).Error
	if err != nil {
		return err
	}
	p := map[string]string{"programme": r.Programme, "level": r.LevelZh + " / " + r.LevelEn}
	for k, v := range params {
		p[k] = v
	}
	_, err = store.Enqueue(ctx, tx, s.now(), store.Notice{UserID: r.CandidateID, Kind: kind, Data: store.NoticeData{Params: p}})
	return err
}

// seatNotice queues a seat's message (the exam's links and calendar).
func (s *Service) seatNotice(ctx context.Context, tx *gorm.DB, seat *store.Seat) error {
	notices, err := exam.SeatNotices(ctx, tx, seat.SessionID, []int64{seat.ID}, "")
	if err != nil {
		return err
	}
	_, err = store.Enqueue(ctx, tx, s.now(), notices...)
	return err
}

// yuan formats an amount in cents.
func yuan(cents int64) string { return fmt.Sprintf("¥%d.%02d", cents/100, cents%100) }

// componentName is a component's name in both languages.
func componentName(c string) string {
	t := i18n.T("cert.component." + c)
	return t.Zh + " / " + t.En
}

// resultNotice tells the candidate a component's result.
func (s *Service) resultNotice(ctx context.Context, tx *gorm.DB, st *store.Sitting) error {
	key, score := "mail.result.failed", ""
	if st.Passed != nil && *st.Passed {
		key = "mail.result.passed"
	}
	if st.Score != nil {
		score = strconv.FormatFloat(*st.Score, 'f', -1, 64)
	}
	r := i18n.T(key, "score", score)
	return s.regNotice(ctx, tx, st.RegistrationID, "result_published", map[string]string{"exam": componentName(st.Component), "result": r.Zh + " / " + r.En})
}

// retakeNotice tells the candidate a failed component may be retaken, once
// for each failed sitting.
func (s *Service) retakeNotice(ctx context.Context, tx *gorm.DB, reg *store.Registration, c exam.Component, sat, left int) error {
	var r struct{ Programme, LevelZh, LevelEn string }
	err := tx.WithContext(ctx).Table("levels").Select("programmes.name_zh AS programme, levels.name_zh AS level_zh, levels.name_en AS level_en").
		Joins("JOIN programmes ON programmes.id = levels.programme_id").Where("levels.id = ?", reg.LevelID).Scan(&r).Error
	if err != nil {
		return err
	}
	_, err = store.Enqueue(ctx, tx, s.now(), store.Notice{UserID: reg.CandidateID, Kind: "retake_offered",
		Dedupe: fmt.Sprintf("retake_offered:%d:%s:%d", reg.ID, c, sat),
		Data: store.NoticeData{Params: map[string]string{"programme": r.Programme, "level": r.LevelZh + " / " + r.LevelEn,
			"component": componentName(string(c)), "left": strconv.Itoa(left)}}})
	return err
}

// panelNotices tell each member of a panel whom and what they score.
func (s *Service) panelNotices(ctx context.Context, tx *gorm.DB, st *store.Sitting, reg *store.Registration, lv *level, members []int64) error {
	notices := make([]store.Notice, len(members))
	for i, id := range members {
		notices[i] = store.Notice{UserID: id, Kind: "panel_assigned", Data: store.NoticeData{Params: map[string]string{
			"programme": lv.prog.NameZh, "level": lv.row.NameZh + " / " + lv.row.NameEn,
			"component": componentName(st.Component), "candidate": reg.Name}}}
	}
	_, err := store.Enqueue(ctx, tx, s.now(), notices...)
	return err
}
