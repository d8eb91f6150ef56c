package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// forEachLeases runs fn on in-process leases and on Redis's; wait lets
// time pass for both (a fake clock, or a real sleep for Redis's expiry).
func forEachLeases(t *testing.T, fn func(t *testing.T, l store.Leases, ttl time.Duration, wait func(time.Duration))) {
	t.Run("memory", func(t *testing.T) {
		var mu sync.Mutex
		now := time.Unix(1e9, 0)
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		fn(t, store.NewMemLeases(clock), time.Second, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() })
	})
	t.Run("redis", func(t *testing.T) {
		fn(t, storetest.NewRedis(t), 300*time.Millisecond, time.Sleep)
	})
}

func TestLeasesHaveOneOwnerAndAGrowingFence(t *testing.T) {
	forEachLeases(t, func(t *testing.T, l store.Leases, ttl time.Duration, wait func(time.Duration)) {
		ctx := context.Background()
		a, err := l.Claim(ctx, "room:1", "a", ttl)
		if err != nil || a.Node != "a" || a.Fence != 1 {
			t.Fatalf("first claim = %+v, %v; want a with fence 1", a, err)
		}
		if b, _ := l.Claim(ctx, "room:1", "b", ttl); b != a {
			t.Fatalf("a second claim while a holds the room = %+v, want a's lease %+v", b, a)
		}
		if ok, err := l.Renew(ctx, a, ttl); !ok || err != nil {
			t.Fatalf("owner's renew = %v, %v", ok, err)
		}
		if oks, err := l.RenewAll(ctx, []store.Lease{a}, ttl); err != nil || len(oks) != 1 || !oks[0] {
			t.Fatalf("owner's renew of all = %v, %v", oks, err)
		}
		// a pauses past its lease; b takes the room with a higher fence.
		wait(ttl + ttl/2)
		if _, ok, _ := l.Owner(ctx, "room:1"); ok {
			t.Fatal("a lapsed lease still has an owner")
		}
		b, _ := l.Claim(ctx, "room:1", "b", ttl)
		if b.Node != "b" || b.Fence <= a.Fence {
			t.Fatalf("claim after a lapsed = %+v, want b with a fence above %d", b, a.Fence)
		}
		if a.Since != 0 || b.Since == 0 {
			t.Fatalf("since: first owner %d, after a lapse %d; want 0, then a's last renewal", a.Since, b.Since)
		}
		if ok, err := l.Renew(ctx, a, ttl); ok || err != nil {
			t.Fatalf("the old owner's renew = %v, %v; want refused", ok, err)
		}
		if oks, err := l.RenewAll(ctx, []store.Lease{a, b}, ttl); err != nil || oks[0] || !oks[1] {
			t.Fatalf("renew of all [old owner's, new owner's] = %v, %v; want [false true]", oks, err)
		}
		if cur, _, _ := l.Owner(ctx, "room:1"); cur != b {
			t.Fatalf("owner after a's late renew = %+v, want %+v", cur, b)
		}
		// A lease that lapsed with no new owner is taken back by its holder...
		wait(ttl + ttl/2)
		if ok, _ := l.Renew(ctx, b, ttl); !ok {
			t.Fatal("b could not take back its own lapsed lease")
		}
		// ...but never by an older one.
		l.Release(ctx, b)
		if ok, _ := l.Renew(ctx, a, ttl); ok {
			t.Fatal("an older fence took a released room back")
		}
		l.Release(ctx, a) // not a's: changes nothing
		c, _ := l.Claim(ctx, "room:1", "c", ttl)
		if c.Fence <= b.Fence || c.Since != 0 {
			t.Fatalf("lease after a release = %+v, want a fence above %d and no outage (since 0)", c, b.Fence)
		}
	})
}

func TestLeasesKnowTheLiveNodesAndTheirRooms(t *testing.T) {
	forEachLeases(t, func(t *testing.T, l store.Leases, ttl time.Duration, wait func(time.Duration)) {
		ctx := context.Background()
		l.Beat(ctx, store.NodeInfo{ID: "a", URL: "http://127.0.0.1:1"}, ttl)
		l.Beat(ctx, store.NodeInfo{ID: "b", URL: "http://127.0.0.1:2"}, 10*ttl)
		l.Claim(ctx, "room:1", "a", 10*ttl)
		l.Claim(ctx, "room:2", "a", 10*ttl)
		l.Claim(ctx, "room:3", "b", 10*ttl)
		nodes, err := l.Nodes(ctx)
		if err != nil || len(nodes) != 2 {
			t.Fatalf("nodes = %+v, %v", nodes, err)
		}
		for _, n := range nodes {
			if want := map[string]int{"a": 2, "b": 1}[n.ID]; n.Rooms != want {
				t.Errorf("node %s holds %d rooms, want %d", n.ID, n.Rooms, want)
			}
		}
		wait(ttl + ttl/2) // a falls silent
		if nodes, _ := l.Nodes(ctx); len(nodes) != 1 || nodes[0].ID != "b" || nodes[0].URL != "http://127.0.0.1:2" {
			t.Fatalf("nodes after a fell silent = %+v, want b alone", nodes)
		}
		l.Forget(ctx, "b")
		if _, ok, _ := l.Owner(ctx, "room:3"); ok {
			t.Fatal("Forget left b's room owned")
		}
		if _, ok, _ := l.Owner(ctx, "room:1"); !ok {
			t.Fatal("Forget of b dropped a's room")
		}
	})
}

// Nodes that claim one room at the same moment all learn the same owner.
func TestLeasesClaimedAtOnceHaveOneOwner(t *testing.T) {
	forEachLeases(t, func(t *testing.T, l store.Leases, ttl time.Duration, wait func(time.Duration)) {
		got := make(chan store.Lease, 20)
		var start sync.WaitGroup
		start.Add(1)
		for i := range 20 {
			go func() {
				start.Wait()
				lease, err := l.Claim(context.Background(), "room:7", fmt.Sprintf("n%d", i), 10*ttl)
				if err != nil {
					t.Error(err)
				}
				got <- lease
			}()
		}
		start.Done()
		first := <-got
		for range 19 {
			if g := <-got; g != first {
				t.Fatalf("two owners of one room: %+v and %+v", first, g)
			}
		}
		if first.Fence != 1 {
			t.Fatalf("fence %d after one claim, want 1", first.Fence)
		}
	})
}
