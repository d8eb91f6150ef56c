package main

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/store"
)

// demoOrganisations are the training organisations of the demo: each
// candidate trained at one, each panel member works at one, so conflicts of
// interest can be seen.
var demoOrganisations = []string{"北京客服培训中心", "上海联络服务学院", "广州呼叫中心培训基地", "成都职业技能培训学校", "武汉客户服务研究院"}

// seedCertificates gives the demo its certificate programme: every seated
// candidate holds a paid junior registration whose theory sitting is their
// seat; the panel members have organisations; and an intermediate theory
// exam (short, 20 questions) has a session open for a month, so the whole
// intermediate path (register, pay, sit, upload the plan, panel, certificate)
// can be tried.
func seedCertificates(ctx context.Context, tx *gorm.DB, prog *store.Programme, levels map[string]int64, demo *DemoFile, idOf map[string]int64, seats []store.Seat, startsAt time.Time) error {
	tx = tx.WithContext(ctx)
	now := time.Now().UTC()
	for i, p := range demo.Panel {
		if err := tx.Create(&store.Affiliation{UserID: idOf[p.Username], Organisation: demoOrganisations[(i+2)%len(demoOrganisations)]}).Error; err != nil {
			return err
		}
	}
	inter := levels["intermediate"]
	ex := &store.Exam{ProgrammeID: prog.ID, LevelID: &inter, Code: "KFZX-I-THEORY", Kind: "formal",
		TitleZh: "客服联络咨询师（中级）理论考试 · 演示", TitleEn: "Customer Contact Consultant (Intermediate) theory exam · demo",
		DurationMinutes: 30, PassMark: exam.DefaultRules.PassMark, Blueprint: mockBlueprint}
	if err := tx.Create(ex).Error; err != nil {
		return err
	}
	sess := &store.ExamSession{ExamID: ex.ID, Code: "KFZX-I-" + startsAt.Format("20060102"), Title: "客服联络咨询师（中级）理论考试 " + startsAt.Format("2006-01-02"),
		StartsAt: startsAt.UTC(), AdmissionEndsAt: startsAt.AddDate(0, 1, 0).UTC(), EndsAt: startsAt.AddDate(0, 1, 0).UTC(), AdmissionMode: exam.AdmitOpen}
	if err := tx.Create(sess).Error; err != nil {
		return err
	}
	if err := tx.Create(&store.Room{SessionID: sess.ID, Code: "R01", Name: "第 01 考场"}).Error; err != nil {
		return err
	}

	name := map[int64]string{}
	for _, c := range demo.Candidates {
		name[idOf[c.Ticket]] = c.Name
	}
	regs := make([]store.Registration, len(seats))
	for i, s := range seats {
		regs[i] = store.Registration{CandidateID: s.CandidateID, LevelID: levels["junior"], Name: name[s.CandidateID], IDNumber: demoIDNumber(i),
			Education: certify.Educations[1+i%4], TrainingHours: 48 + i%40, Organisation: demoOrganisations[i%len(demoOrganisations)],
			Status: certify.RegOpen, CreatedAt: now}
	}
	if err := tx.CreateInBatches(regs, 500).Error; err != nil {
		return err
	}
	fees := make([]store.Fee, len(regs))
	for i, r := range regs {
		fees[i] = store.Fee{RegistrationID: r.ID, Item: certify.ItemRegistration, AmountCents: exam.DefaultLevels[0].FeeCents, CreatedAt: now,
			PaidAt: &now, Method: "demo", Reference: "DEMO-" + seats[i].Ticket}
	}
	if err := tx.CreateInBatches(fees, 500).Error; err != nil {
		return err
	}
	sittings := make([]store.Sitting, len(regs))
	for i, r := range regs {
		sittings[i] = store.Sitting{RegistrationID: r.ID, Component: string(exam.Theory), N: 1, FeeID: &fees[i].ID, SeatID: &seats[i].ID, CreatedAt: now}
	}
	return tx.CreateInBatches(sittings, 500).Error
}

// demoIDNumber makes the i-th demo candidate a valid resident ID number
// (Beijing Chaoyang, born in the 1990s).
func demoIDNumber(i int) string {
	born := time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i%3650)
	first17 := fmt.Sprintf("110105%s%03d", born.Format("20060102"), i%1000)
	return first17 + string(certify.IDCheckChar(first17))
}
