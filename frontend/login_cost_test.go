package frontend

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// Every refused login costs one light and one heavy password check,
// whatever the name: unknown, a candidate's generated password, a staff
// member's or a signed-up candidate's chosen one. So its time tells
// nothing about the account.
func TestEveryRefusalCostsTheSame(t *testing.T) {
	db := storetest.NewDB(t, "sqlite")
	s, err := New(Config{DB: db, Bus: store.NewMemBus(), Counters: store.NewMemCounters(), Metrics: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	add := func(role store.Role, name string, origin Origin) {
		h, _ := HashPassword("the right password", role, origin)
		if err := db.Create(&store.User{Role: role, Username: name, PasswordHash: h, DisplayName: name}).Error; err != nil {
			t.Fatal(err)
		}
	}
	add(store.RoleCandidate, "2026000001", Generated)
	add(store.RoleAdmin, "admin", Chosen)
	add(store.RoleCandidate, "11010519491231002X", Chosen)
	for _, name := range []string{"2026000001", "admin", "11010519491231002X", "2026999999", "nobody", "320102199608152349"} {
		l, h := lightChecks.Load(), heavyChecks.Load()
		_, _, _, err := s.login(context.Background(), name, "a wrong password", "127.0.0.1", "test")
		if !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%s: %v", name, err)
		}
		if dl, dh := lightChecks.Load()-l, heavyChecks.Load()-h; dl != 1 || dh != 1 {
			t.Errorf("refusing %s cost %d light and %d heavy checks, want 1 and 1", name, dl, dh)
		}
	}
}
