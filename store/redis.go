package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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

// FlushDB empties the Redis database (tests only: it drops every key, not
// only the prefix's).
func (r *Redis) FlushDB(ctx context.Context) error { return r.c.FlushDB(ctx).Err() }

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

// The leases of a cluster. Keys: node:<id> (the heartbeat, expiring),
// nodes (the set of node ids ever seen, pruned as they expire),
// lease:<room> ("<node>|<fence>", expiring), fence:<room> (the room's
// fencing counter, kept), rooms:<node> (the rooms a node holds), last:<room>
// (when its owner last renewed, in ms; deleted by a release).

var claimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then return cur end
local f = redis.call('INCR', KEYS[2])
local v = ARGV[1] .. '|' .. f .. '|' .. (redis.call('GET', KEYS[4]) or '0')
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
redis.call('SET', KEYS[4], ARGV[4])
redis.call('SADD', KEYS[3], ARGV[3])
return v`)

// renewScript extends the lease; one that expired with no new owner (or
// that a restarted Redis forgot) is taken back unless a later fence exists.
var renewScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[4], ARGV[5])
  return 1
end
if not cur then
  local f = tonumber(redis.call('GET', KEYS[2]) or '0')
  if f <= tonumber(ARGV[3]) then
    redis.call('SET', KEYS[2], ARGV[3])
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    redis.call('SET', KEYS[4], ARGV[5])
    redis.call('SADD', KEYS[3], ARGV[4])
    return 1
  end
end
redis.call('SREM', KEYS[3], ARGV[4])
return 0`)

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1], KEYS[3]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 0`)

var forgetScript = redis.NewScript(`
for _, room in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = ARGV[1] .. 'lease:' .. room
  local cur = redis.call('GET', k)
  if cur and string.sub(cur, 1, #ARGV[2] + 1) == ARGV[2] .. '|' then redis.call('DEL', k) end
end
redis.call('DEL', KEYS[1])
return 0`)

// Beat implements Leases.
func (r *Redis) Beat(ctx context.Context, n NodeInfo, ttl time.Duration) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	pipe := r.c.TxPipeline()
	pipe.Set(ctx, r.prefix+"node:"+n.ID, b, ttl)
	pipe.SAdd(ctx, r.prefix+"nodes", n.ID)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("store: redis heartbeat: %w", err)
	}
	return nil
}

// Nodes implements Leases.
func (r *Redis) Nodes(ctx context.Context) ([]NodeInfo, error) {
	ids, err := r.c.SMembers(ctx, r.prefix+"nodes").Result()
	if err != nil {
		return nil, fmt.Errorf("store: redis nodes: %w", err)
	}
	pipe := r.c.Pipeline()
	gets := make([]*redis.StringCmd, len(ids))
	cards := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		gets[i] = pipe.Get(ctx, r.prefix+"node:"+id)
		cards[i] = pipe.SCard(ctx, r.prefix+"rooms:"+id)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: redis nodes: %w", err)
	}
	var out []NodeInfo
	for i, id := range ids {
		var n NodeInfo
		b, err := gets[i].Bytes()
		if err != nil || json.Unmarshal(b, &n) != nil {
			r.c.SRem(ctx, r.prefix+"nodes", id) // silent past its ttl: dead
			continue
		}
		n.Rooms = int(cards[i].Val())
		out = append(out, n)
	}
	return out, nil
}

func (r *Redis) leaseKeys(room, node string) []string {
	return []string{r.prefix + "lease:" + room, r.prefix + "fence:" + room, r.prefix + "rooms:" + node, r.prefix + "last:" + room}
}

// parseLease reads "<node>|<fence>|<since>".
func parseLease(room, v string) (Lease, error) {
	parts := strings.Split(v, "|")
	if len(parts) != 3 {
		return Lease{}, fmt.Errorf("store: lease %q of room %s", v, room)
	}
	f, err1 := strconv.ParseInt(parts[1], 10, 64)
	since, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return Lease{}, fmt.Errorf("store: lease %q of room %s", v, room)
	}
	return Lease{Room: room, Node: parts[0], Fence: f, Since: since}, nil
}

func leaseValue(l Lease) string {
	return l.Node + "|" + strconv.FormatInt(l.Fence, 10) + "|" + strconv.FormatInt(l.Since, 10)
}

// Owner implements Leases.
func (r *Redis) Owner(ctx context.Context, room string) (Lease, bool, error) {
	v, err := r.c.Get(ctx, r.prefix+"lease:"+room).Result()
	if errors.Is(err, redis.Nil) {
		return Lease{}, false, nil
	}
	if err != nil {
		return Lease{}, false, fmt.Errorf("store: redis lease: %w", err)
	}
	l, err := parseLease(room, v)
	return l, err == nil, err
}

// Claim implements Leases.
func (r *Redis) Claim(ctx context.Context, room, node string, ttl time.Duration) (Lease, error) {
	v, err := claimScript.Run(ctx, r.c, r.leaseKeys(room, node), node, ttl.Milliseconds(), room, time.Now().UnixMilli()).Text()
	if err != nil {
		return Lease{}, fmt.Errorf("store: redis claim: %w", err)
	}
	return parseLease(room, v)
}

// Renew implements Leases.
func (r *Redis) Renew(ctx context.Context, l Lease, ttl time.Duration) (bool, error) {
	n, err := renewScript.Run(ctx, r.c, r.leaseKeys(l.Room, l.Node), leaseValue(l), ttl.Milliseconds(), l.Fence, l.Room, time.Now().UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("store: redis renew: %w", err)
	}
	return n == 1, nil
}

// RenewAll implements Leases: every renewal in one pipeline.
func (r *Redis) RenewAll(ctx context.Context, ls []Lease, ttl time.Duration) ([]bool, error) {
	if len(ls) == 0 {
		return nil, nil
	}
	// Load the script once, so the pipeline can run it by its hash.
	if err := renewScript.Load(ctx, r.c).Err(); err != nil {
		return nil, fmt.Errorf("store: redis renew: %w", err)
	}
	now := time.Now().UnixMilli()
	pipe := r.c.Pipeline()
	cmds := make([]*redis.Cmd, len(ls))
	for i, l := range ls {
		cmds[i] = renewScript.EvalSha(ctx, pipe, r.leaseKeys(l.Room, l.Node), leaseValue(l), ttl.Milliseconds(), l.Fence, l.Room, now)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("store: redis renew: %w", err)
	}
	oks := make([]bool, len(ls))
	for i, c := range cmds {
		n, err := c.Int()
		if err != nil {
			return nil, fmt.Errorf("store: redis renew: %w", err)
		}
		oks[i] = n == 1
	}
	return oks, nil
}

// Release implements Leases.
func (r *Redis) Release(ctx context.Context, l Lease) error {
	keys := r.leaseKeys(l.Room, l.Node)
	if err := releaseScript.Run(ctx, r.c, []string{keys[0], keys[2], keys[3]}, leaseValue(l), l.Room).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: redis release: %w", err)
	}
	return nil
}

// Forget implements Leases.
func (r *Redis) Forget(ctx context.Context, node string) error {
	err := forgetScript.Run(ctx, r.c, []string{r.prefix + "rooms:" + node}, r.prefix, node).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("store: redis forget: %w", err)
	}
	return nil
}
