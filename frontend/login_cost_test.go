package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/examhall/examhall/exam/accounts"
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
	add := func(role store.Role, name string, origin accounts.Origin) {
		h, _ := accounts.HashPassword("the right password", role, origin)
		if err := db.Create(&store.User{Role: role, Username: name, PasswordHash: h, DisplayName: name}).Error; err != nil {
			t.Fatal(err)
		}
	}
	add(store.RoleCandidate, "2026000001", accounts.Generated)
	add(store.RoleAdmin, "admin", accounts.Chosen)
	add(store.RoleCandidate, "11010519491231002X", accounts.Chosen)
	for _, name := range []string{"2026000001", "admin", "11010519491231002X", "2026999999", "nobody", "320102199608152349"} {
		l, h := accounts.Checks()
		_, _, _, err := s.login(context.Background(), name, "a wrong password", "127.0.0.1", "test")
		if !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("%s: %v", name, err)
		}
		if nl, nh := accounts.Checks(); nl-l != 1 || nh-h != 1 {
			t.Errorf("refusing %s cost %d light and %d heavy checks, want 1 and 1", name, nl-l, nh-h)
		}
	}
}

// An outsider who knows a candidate's (printed, sequential) ticket number
// can make them wait at most a few seconds, never lock them out; the same
// address waits longer; an invigilator's clearing ends every wait; a room
// behind one address waits a second at most.
func TestLoginDelaysNeverLockOut(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	db := storetest.NewDB(t, "sqlite")
	s, err := New(Config{DB: db, Bus: store.NewMemBus(), Counters: store.NewMemCountersClock(clock), Now: clock,
		Metrics: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	const ticket, pw = "2026000001", "K7Q2M-9XWPA"
	h, _ := accounts.HashPassword(pw, store.RoleCandidate, accounts.Generated)
	db.Create(&store.User{Role: store.RoleCandidate, Username: ticket, PasswordHash: h, DisplayName: "考生"})
	ctx := context.Background()
	try := func(password, ip string) (time.Duration, error) {
		_, _, _, err := s.login(ctx, ticket, password, ip, "test")
		var rl *RateLimitedError
		if errors.As(err, &rl) {
			return rl.RetryAfter, err
		}
		return 0, err
	}
	// The attacker fails 15 times, waiting out each wait.
	var longest time.Duration
	for range 15 {
		for {
			wait, err := try("guess", "203.0.113.66")
			if wait == 0 {
				if !errors.Is(err, ErrBadCredentials) {
					t.Fatal(err)
				}
				break
			}
			longest = max(longest, wait)
			now = now.Add(wait)
		}
	}
	if longest != pairMaxWait {
		t.Errorf("the attacker's longest wait %s, want it to grow to %s", longest, pairMaxWait)
	}
	// The candidate, from the exam room, waits at most accountMaxWait.
	wait, _ := try(pw, "198.51.100.5")
	if wait > accountMaxWait {
		t.Fatalf("the candidate waits %s because of someone else", wait)
	}
	now = now.Add(wait)
	if _, err := try(pw, "198.51.100.5"); err != nil {
		t.Fatalf("the candidate after %s: %v", wait, err)
	}
	// The attacker shares the room's address: the invigilator clears.
	for range 8 {
		if wait, _ := try("guess", "198.51.100.5"); wait > 0 {
			now = now.Add(wait)
		}
	}
	if wait, _ := try(pw, "198.51.100.5"); wait == 0 {
		t.Fatal("no wait after 8 failures from this address")
	}
	if err := s.ClearLoginDelay(ctx, ticket); err != nil {
		t.Fatal(err)
	}
	if _, err := try(pw, "198.51.100.5"); err != nil {
		t.Fatalf("after the invigilator cleared the wait: %v", err)
	}
	// A room of candidates behind one address mistyping: a second at most.
	for i := range 60 {
		_, _, _, err := s.login(ctx, fmt.Sprintf("2026%06d", 100+i), "typo", "192.0.2.10", "test")
		var rl *RateLimitedError
		if errors.As(err, &rl) {
			if rl.RetryAfter > addressWait {
				t.Fatalf("the room waits %s", rl.RetryAfter)
			}
			now = now.Add(rl.RetryAfter)
		}
	}
}
