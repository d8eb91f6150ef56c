package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the cluster backend for the bus and the counters.
type Redis struct {
	c      *redis.Client
	prefix string
}

// OpenRedis connects to the Redis server at a redis:// or rediss:// URL. Keys
// and channels are prefixed with prefix, so tests and clusters can share one
// server without seeing each other.
func OpenRedis(ctx context.Context, rawURL, prefix string) (*Redis, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: redis URL: %v", ErrBadURL, err)
	}
	r := &Redis{c: redis.NewClient(opts), prefix: prefix}
	if err := r.Ping(ctx); err != nil {
		r.c.Close()
		return nil, err
	}
	return r, nil
}

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	if err := r.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: redis ping: %w", err)
	}
	return nil
}

// Close closes the connection pool and every subscription.
func (r *Redis) Close() error { return r.c.Close() }

// Publish implements Bus.
func (r *Redis) Publish(ctx context.Context, topic string, data []byte) error {
	return r.c.Publish(ctx, r.prefix+topic, data).Err()
}

// Subscribe implements Bus. A pattern ending in '*' becomes a Redis pattern
// subscription; other glob characters in topics are escaped.
func (r *Redis) Subscribe(ctx context.Context, pattern string) (*Subscription, error) {
	var ps *redis.PubSub
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		ps = r.c.PSubscribe(ctx, globEscape(r.prefix+p)+"*")
	} else {
		ps = r.c.Subscribe(ctx, r.prefix+pattern)
	}
	// Wait for the server to confirm, so a message published after Subscribe
	// returns is not missed.
	if _, err := ps.Receive(ctx); err != nil {
		ps.Close()
		return nil, fmt.Errorf("store: redis subscribe %s: %w", pattern, err)
	}
	out := make(chan Message, subBuffer)
	in := ps.Channel(redis.WithChannelSize(subBuffer), redis.WithChannelSendTimeout(time.Second))
	done := make(chan struct{})
	go func() {
		defer close(out)
		for {
			select {
			case m, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- Message{Topic: strings.TrimPrefix(m.Channel, r.prefix), Data: []byte(m.Payload)}:
				default: // slow subscriber: drop, as MemBus does
				}
			case <-done:
				return
			}
		}
	}()
	return &Subscription{C: out, close: func() {
		ps.Close()
		close(done)
	}}, nil
}

func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`).Replace(s)
}

// hitScript increments a counter and starts its window on the first hit, in
// one round trip and atomically.
var hitScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}`)

// Hit implements Counters.
func (r *Redis) Hit(ctx context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	res, err := hitScript.Run(ctx, r.c, []string{r.prefix + "count:" + key}, window.Milliseconds()).Int64Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("store: redis hit: %w", err)
	}
	return res[0], time.Duration(res[1]) * time.Millisecond, nil
}

// Peek implements Counters.
func (r *Redis) Peek(ctx context.Context, key string) (int64, time.Duration, error) {
	k := r.prefix + "count:" + key
	pipe := r.c.Pipeline()
	get := pipe.Get(ctx, k)
	ttl := pipe.PTTL(ctx, k)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, 0, fmt.Errorf("store: redis peek: %w", err)
	}
	n, err := get.Int64()
	if errors.Is(err, redis.Nil) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	return n, max(ttl.Val(), 0), nil
}

// Reset implements Counters.
func (r *Redis) Reset(ctx context.Context, key string) error {
	return r.c.Del(ctx, r.prefix+"count:"+key).Err()
}
