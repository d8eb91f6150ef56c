package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

func receive(t *testing.T, s *store.Subscription) store.Message {
	t.Helper()
	select {
	case m, ok := <-s.C:
		if !ok {
			t.Fatal("subscription closed")
		}
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5 s")
	}
	return store.Message{}
}

func TestBusDeliversByTopicAndPattern(t *testing.T) {
	storetest.ForEachBus(t, func(t *testing.T, bus store.Bus, _ store.Counters) {
		ctx := context.Background()
		exact, err := bus.Subscribe(ctx, "flags.room1")
		if err != nil {
			t.Fatal(err)
		}
		defer exact.Close()
		all, err := bus.Subscribe(ctx, "flags.*")
		if err != nil {
			t.Fatal(err)
		}
		defer all.Close()
		other, err := bus.Subscribe(ctx, "actions.room1")
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()

		for i, topic := range []string{"flags.room1", "flags.room2"} {
			if err := bus.Publish(ctx, topic, []byte(fmt.Sprint("m", i))); err != nil {
				t.Fatal(err)
			}
		}
		if m := receive(t, exact); m.Topic != "flags.room1" || string(m.Data) != "m0" {
			t.Errorf("exact got %q %q", m.Topic, m.Data)
		}
		// Messages of one publisher arrive in order.
		if m := receive(t, all); m.Topic != "flags.room1" || string(m.Data) != "m0" {
			t.Errorf("pattern first got %q %q", m.Topic, m.Data)
		}
		if m := receive(t, all); m.Topic != "flags.room2" || string(m.Data) != "m1" {
			t.Errorf("pattern second got %q %q", m.Topic, m.Data)
		}
		select {
		case m := <-other.C:
			t.Errorf("unrelated subscriber got %q", m.Topic)
		case <-time.After(100 * time.Millisecond):
		}
		exact.Close()
		if _, ok := <-exact.C; ok {
			t.Error("channel open after Close")
		}
		if err := bus.Ping(ctx); err != nil {
			t.Error(err)
		}
	})
}

func TestBusGlobCharactersInTopicsAreLiteral(t *testing.T) {
	storetest.ForEachBus(t, func(t *testing.T, bus store.Bus, _ store.Counters) {
		ctx := context.Background()
		s, err := bus.Subscribe(ctx, "a?b.*")
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		bus.Publish(ctx, "axb.1", []byte("no"))
		bus.Publish(ctx, "a?b.1", []byte("yes"))
		if m := receive(t, s); string(m.Data) != "yes" {
			t.Errorf("got %q, want only the literal match", m.Data)
		}
	})
}

func TestCountersWindow(t *testing.T) {
	storetest.ForEachBus(t, func(t *testing.T, _ store.Bus, c store.Counters) {
		ctx := context.Background()
		for want := int64(1); want <= 3; want++ {
			n, left, err := c.Hit(ctx, "login:ann", 300*time.Millisecond)
			if err != nil || n != want || left <= 0 || left > 300*time.Millisecond {
				t.Fatalf("hit %d = %d, %v, %v", want, n, left, err)
			}
		}
		if n, _, err := c.Peek(ctx, "login:ann"); err != nil || n != 3 {
			t.Fatalf("Peek = %d, %v", n, err)
		}
		if n, _, _ := c.Peek(ctx, "login:bob"); n != 0 {
			t.Fatalf("unseen key counts %d", n)
		}
		time.Sleep(350 * time.Millisecond)
		if n, _, _ := c.Peek(ctx, "login:ann"); n != 0 {
			t.Fatalf("count survived its window: %d", n)
		}
		c.Hit(ctx, "login:ann", time.Minute)
		if err := c.Reset(ctx, "login:ann"); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := c.Peek(ctx, "login:ann"); n != 0 {
			t.Fatalf("count survived Reset: %d", n)
		}
	})
}

func TestMemBusDropsForSlowSubscriberWithoutBlocking(t *testing.T) {
	b := store.NewMemBus()
	defer b.Close()
	s, _ := b.Subscribe(context.Background(), "t")
	defer s.Close()
	for range 1000 {
		if err := b.Publish(context.Background(), "t", nil); err != nil {
			t.Fatal(err)
		}
	}
	if b.Dropped() == 0 {
		t.Fatal("no drops recorded for a subscriber that never reads")
	}
	b.Close()
	if err := b.Publish(context.Background(), "t", nil); err == nil {
		t.Fatal("publish on a closed bus succeeded")
	}
}
