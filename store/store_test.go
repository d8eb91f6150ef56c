package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

func TestMigrateIsIdempotentAndRefusesUnknownSchema(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		if err := db.Exec("INSERT INTO schema_migrations (id) VALUES ('9999_from_the_future')").Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx); !errors.Is(err, store.ErrUnknownSchema) {
			t.Fatalf("migrate on a newer schema: got %v, want ErrUnknownSchema", err)
		}
	})
}

func TestAccountsAndSessions(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		u := &store.User{Role: store.RoleAdmin, Username: "admin", PasswordHash: "h", DisplayName: "管理员"}
		if err := db.Create(u).Error; err != nil {
			t.Fatal(err)
		}
		dup := &store.User{Role: store.RoleAdmin, Username: "admin", PasswordHash: "h", DisplayName: "x"}
		if err := db.Create(dup).Error; err == nil {
			t.Fatal("duplicate username accepted")
		}
		got, err := db.UserByUsername(ctx, "admin")
		if err != nil || got.ID != u.ID || got.DisplayName != "管理员" || got.Role != store.RoleAdmin {
			t.Fatalf("UserByUsername = %+v, %v", got, err)
		}
		if _, err := db.UserByUsername(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}

		now := time.Now().UTC()
		live := &store.AuthSession{TokenHash: "live", CSRFToken: "c", UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		old := &store.AuthSession{TokenHash: "old", CSRFToken: "c", UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(-time.Second)}
		for _, s := range []*store.AuthSession{live, old} {
			if err := db.CreateAuthSession(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
		s, su, err := db.AuthSessionByToken(ctx, "live", now)
		if err != nil || s.ID != live.ID || su.ID != u.ID {
			t.Fatalf("live session: %+v %+v %v", s, su, err)
		}
		if !s.ExpiresAt.Equal(live.ExpiresAt.Truncate(time.Microsecond)) && s.ExpiresAt.Sub(live.ExpiresAt).Abs() > time.Millisecond {
			t.Errorf("expiry round trip: got %v want %v", s.ExpiresAt, live.ExpiresAt)
		}
		if _, _, err := db.AuthSessionByToken(ctx, "old", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session found: %v", err)
		}
		if n, err := db.DeleteExpiredAuthSessions(ctx, now); err != nil || n != 1 {
			t.Fatalf("DeleteExpiredAuthSessions = %d, %v", n, err)
		}
		if err := db.Model(u).Update("disabled", true).Error; err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.AuthSessionByToken(ctx, "live", now); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session of a disabled account is valid: %v", err)
		}
		if err := db.DeleteAuthSession(ctx, "live"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSeatByTicketAndForeignKeys(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// A seat pointing at rows that do not exist is refused on both databases.
		bad := &store.Seat{SessionID: 999, RoomID: 999, CandidateID: 999, Ticket: "X", SeatNo: 1}
		if err := db.Create(bad).Error; err == nil {
			t.Fatal("seat with dangling foreign keys accepted")
		}
		p := &store.Programme{Code: "p", NameZh: "项目", NameEn: "P", Rules: "{}"}
		db.Create(p)
		e := &store.Exam{ProgrammeID: p.ID, Code: "e", Kind: "formal", TitleZh: "理论", TitleEn: "Theory", DurationMinutes: 120, PassMark: 80, Blueprint: "{}"}
		db.Create(e)
		now := time.Now().UTC()
		es := &store.ExamSession{ExamID: e.ID, Code: "s", Title: "S", StartsAt: now, AdmissionEndsAt: now, EndsAt: now, AdmissionMode: "auto"}
		db.Create(es)
		r := &store.Room{SessionID: es.ID, Code: "R01", Name: "第一考场"}
		db.Create(r)
		c := &store.User{Role: store.RoleCandidate, Username: "c1", PasswordHash: "h", DisplayName: "张三"}
		db.Create(c)
		seat := &store.Seat{SessionID: es.ID, RoomID: r.ID, CandidateID: c.ID, Ticket: "2026000001", SeatNo: 1}
		if err := db.Create(seat).Error; err != nil {
			t.Fatal(err)
		}
		s, u, err := db.SeatByTicket(ctx, "2026000001")
		if err != nil || s.ID != seat.ID || u.ID != c.ID {
			t.Fatalf("SeatByTicket = %+v %+v %v", s, u, err)
		}
		if _, _, err := db.SeatByTicket(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown ticket: %v", err)
		}
	})
}

func TestSettingsAndAudit(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Setting(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing setting: %v", err)
		}
		for _, v := range []string{"一", "二"} {
			if err := db.PutSetting(ctx, "k", v); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := db.Setting(ctx, "k"); err != nil || v != "二" {
			t.Fatalf("Setting = %q, %v", v, err)
		}
		for _, a := range []string{"login", "logout"} {
			if err := db.Audit(ctx, &store.AuditEvent{Action: a, ObjectType: "user", ObjectID: "7"}); err != nil {
				t.Fatal(err)
			}
		}
		es, err := db.AuditFor(ctx, "user", "7")
		if err != nil || len(es) != 2 || es[0].Action != "login" || es[1].Action != "logout" || es[0].Detail != "{}" {
			t.Fatalf("AuditFor = %+v, %v", es, err)
		}
	})
}
