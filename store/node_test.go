package store_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/examhall/examhall/store"
)

// redisProcess runs a redis-server of the test's own (no persistence), so
// the test can stop and restart it.
type redisProcess struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisProcess {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not installed (apt-get install redis-server; .ci/run does it)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &redisProcess{t: t, port: ln.Addr().(*net.TCPAddr).Port}
	ln.Close()
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisProcess) start() {
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port)); err == nil {
			c.Close()
			return
		}
	}
	r.t.Fatal("redis-server did not start")
}

func (r *redisProcess) stop() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// A node keeps its room through a Redis restart (the server comes back
// empty) when it renews in time, and gives the room up, closing its
// sockets, when Redis stays away past the lease.
func TestNodeThroughARedisRestart(t *testing.T) {
	rp := startRedis(t)
	ctx := context.Background()
	r, err := store.OpenRedis(ctx, fmt.Sprintf("redis://127.0.0.1:%d/0", rp.port), "t:")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var mu sync.Mutex
	var lost []string
	n, err := store.NewNode(store.NodeConfig{ID: "n1", URL: "http://127.0.0.1:1", Leases: r})
	if err != nil {
		t.Fatal(err)
	}
	n.OnLost(func(room string) { mu.Lock(); lost = append(lost, room); mu.Unlock() })
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if here, _, err := n.Route(ctx, "room:1"); !here || err != nil {
		t.Fatalf("route = %v, %v; want here", here, err)
	}
	lease, _ := n.Holds("room:1")

	rp.stop()
	time.Sleep(time.Second)
	n.Tick(ctx) // fails: Redis is away, the lease is still trusted
	if _, ok := n.Holds("room:1"); !ok {
		t.Fatal("the room was dropped 1 s into a Redis outage")
	}
	rp.start() // empty: no lease, no fence
	n.Tick(ctx)
	if l, ok, err := r.Owner(ctx, "room:1"); !ok || err != nil || l != lease {
		t.Fatalf("after the restart the lease is %+v (%v, %v), want the node's %+v back", l, ok, err, lease)
	}
	if other, _ := r.Claim(ctx, "room:1", "n2", store.LeaseTTL); other != lease {
		t.Fatalf("another node claimed the room back from its live owner: %+v", other)
	}

	rp.stop()
	time.Sleep(store.LeaseTTL)
	n.Tick(ctx)
	if _, ok := n.Holds("room:1"); ok {
		t.Fatal("the room is still held with Redis away past the lease")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lost) != 1 || lost[0] != "room:1" {
		t.Fatalf("rooms lost = %v, want room:1 once (its sockets closed)", lost)
	}
}
