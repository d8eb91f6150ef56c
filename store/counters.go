package store

import (
	"context"
	"sync"
	"time"
)

// Counters counts events per key in fixed windows, for rate limits such as
// failed logins. In a cluster they live in Redis so every node sees the same
// count.
type Counters interface {
	// Hit adds one to key. The window starts with the first hit and lasts
	// window; Hit returns the count so far and the time left in the window.
	Hit(ctx context.Context, key string, window time.Duration) (count int64, left time.Duration, err error)
	// Peek returns the count and time left without adding.
	Peek(ctx context.Context, key string) (count int64, left time.Duration, err error)
	// Reset forgets key.
	Reset(ctx context.Context, key string) error
}

// MemCounters are the in-process Counters of a single node.
type MemCounters struct {
	mu   sync.Mutex
	m    map[string]memCount
	hits int
	now  func() time.Time
}

type memCount struct {
	n       int64
	expires time.Time
}

// NewMemCounters returns empty in-process counters.
func NewMemCounters() *MemCounters { return NewMemCountersClock(time.Now) }

// NewMemCountersClock returns empty in-process counters on a given clock
// (tests move it).
func NewMemCountersClock(now func() time.Time) *MemCounters {
	return &MemCounters{m: map[string]memCount{}, now: now}
}

// Hit implements Counters.
func (c *MemCounters) Hit(_ context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.hits++; c.hits%1024 == 0 {
		for k, v := range c.m {
			if !now.Before(v.expires) {
				delete(c.m, k)
			}
		}
	}
	v := c.m[key]
	if !now.Before(v.expires) {
		v = memCount{expires: now.Add(window)}
	}
	v.n++
	c.m[key] = v
	return v.n, v.expires.Sub(now), nil
}

// Peek implements Counters.
func (c *MemCounters) Peek(_ context.Context, key string) (int64, time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	v := c.m[key]
	if !now.Before(v.expires) {
		return 0, 0, nil
	}
	return v.n, v.expires.Sub(now), nil
}

// Reset implements Counters.
func (c *MemCounters) Reset(_ context.Context, key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
	return nil
}
