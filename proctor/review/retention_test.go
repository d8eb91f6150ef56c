package review_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/examhall/examhall/proctor/review"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

func TestRetention(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now().UTC()
		dir := t.TempDir()
		p := &store.Programme{Code: "p", NameZh: "项目", NameEn: "P", Rules: "{}"}
		db.Create(p)
		ex := &store.Exam{ProgrammeID: p.ID, Code: "e", Kind: "formal", TitleZh: "理论", TitleEn: "Theory", DurationMinutes: 120, PassMark: 80, Blueprint: "{}", Policy: "{}", ProctorRules: "{}"}
		db.Create(ex)
		u := &store.User{Role: store.RoleCandidate, Username: "c", PasswordHash: "x", DisplayName: "考生"}
		db.Create(u)
		reviewer := &store.User{Role: store.RoleReviewer, Username: "r", PasswordHash: "x", DisplayName: "评审"}
		db.Create(reviewer)
		mk := func(decidedDaysAgo int) (int64, string) {
			a := &store.Attempt{ExamID: ex.ID, CandidateID: u.ID, Kind: "formal", Status: "submitted", Paper: "{}"}
			db.Create(a)
			if decidedDaysAgo >= 0 {
				db.Create(&store.AttemptReview{AttemptID: a.ID, Decision: "valid", DecidedBy: reviewer.ID, DecidedAt: now.AddDate(0, 0, -decidedDaysAgo)})
			}
			path := filepath.Join(dir, filepath.Base(t.Name())+"-"+time.Now().Format("150405.000000000")+".webm")
			os.WriteFile(path, []byte("webm"), 0o600)
			end := now
			db.Create(&store.Recording{AttemptID: a.ID, Device: "pc", Connection: "c", Path: path, Codecs: "vp8", StartedAt: now, EndedAt: &end, State: "closed"})
			return a.ID, path
		}
		_, oldPath := mk(100)   // final 100 days ago: goes
		_, recentPath := mk(10) // final 10 days ago: stays
		_, reviewPath := mk(-1) // still under review: stays
		list, err := review.New(db).Expired(ctx, 90, now)
		if err != nil || len(list) != 1 || list[0].Path != oldPath {
			t.Fatalf("expired %+v %v", list, err)
		}
		// Listing deletes nothing (the dry run).
		if _, err := os.Stat(oldPath); err != nil {
			t.Fatal("a dry run deleted a file")
		}
		if n, err := review.New(db).Purge(ctx, nil, list, now); err != nil || n != 1 {
			t.Fatalf("purge %d %v", n, err)
		}
		if _, err := os.Stat(oldPath); !os.IsNotExist(err) {
			t.Fatal("the expired file is still there")
		}
		for _, p := range []string{recentPath, reviewPath} {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("%s was deleted", p)
			}
		}
		var audits int64
		db.Model(&store.AuditEvent{}).Where("action = ?", "recording_deleted").Count(&audits)
		if audits != 1 {
			t.Fatalf("%d deletions audited", audits)
		}
		if again, _ := review.New(db).Expired(ctx, 90, now); len(again) != 0 {
			t.Fatalf("a deleted recording is listed again: %+v", again)
		}
	})
}
