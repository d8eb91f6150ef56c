package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/examhall/examhall/store"
	"github.com/gorilla/websocket"
)

// redisPrefix prefixes every key and channel examhall uses in Redis.
const redisPrefix = "examhall:"

// DrainTopic carries the id of a node told to drain (examhall drain).
const DrainTopic = "cluster.drain"

// nodeURL is where browsers reach this node: --node-url, else the address
// it listens on (the host name when it listens on every interface).
func (c *Config) nodeURL(addr net.Addr) string {
	if c.NodeURL != "" {
		return c.NodeURL
	}
	scheme := "http"
	if c.https() {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// cpuMeter measures the cores this process kept busy since it was last read.
type cpuMeter struct {
	mu        sync.Mutex
	lastAt    time.Time
	lastBusy  time.Duration
	lastCores float64
}

func (m *cpuMeter) cores() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	busy := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	if !m.lastAt.IsZero() && now.Sub(m.lastAt) > 100*time.Millisecond {
		m.lastCores = float64(busy-m.lastBusy) / float64(now.Sub(m.lastAt))
	}
	m.lastAt, m.lastBusy = now, busy
	return m.lastCores
}

// followDrain calls drain when `examhall drain` names this node.
func followDrain(ctx context.Context, bus store.Bus, id string, log *slog.Logger, drain func()) error {
	sub, err := bus.Subscribe(ctx, DrainTopic)
	if err != nil {
		return err
	}
	go func() {
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-sub.C:
				if !ok {
					return
				}
				var target string
				if json.Unmarshal(m.Data, &target) == nil && target == id {
					log.Info("drain asked for: moving every room to other nodes, then stopping", "node", id)
					drain()
					return
				}
			}
		}
	}()
	return nil
}

// drainCommand tells a node of the cluster to drain: stop taking rooms,
// move its rooms to the other nodes and exit.
func drainCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("drain", args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.Redis == "" {
		return errors.New("drain needs the cluster's --redis (a single node is stopped with SIGTERM)")
	}
	r, err := store.OpenRedis(ctx, cfg.Redis, redisPrefix)
	if err != nil {
		return err
	}
	defer r.Close()
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return err
	}
	found := false
	for _, n := range nodes {
		found = found || n.ID == cfg.NodeID
	}
	if !found {
		return fmt.Errorf("no live node %q in the cluster (examhall drain --node-id NAME)", cfg.NodeID)
	}
	b, _ := json.Marshal(cfg.NodeID)
	if err := r.Publish(ctx, DrainTopic, b); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "node %s is draining: its rooms move to other nodes, then it stops\n", cfg.NodeID)
	return nil
}

// dialRoom opens a room's socket as a device does: a node that does not own
// the room answers {"type": "redirect", "url"} and closes, and the owner's
// first message is {"type": "hello"} (docs/protocol.md, "Rooms and
// nodes"). At most three redirects are followed, each to loopback only.
func dialRoom(ctx context.Context, d *websocket.Dialer, u string) (*websocket.Conn, error) {
	for range 4 {
		if err := loopbackOnly(u); err != nil {
			return nil, err
		}
		ws, _, err := d.DialContext(ctx, u, nil)
		if err != nil {
			return nil, err
		}
		var m struct{ Type, URL string }
		ws.SetReadDeadline(time.Now().Add(15 * time.Second))
		if err := ws.ReadJSON(&m); err != nil {
			ws.Close()
			return nil, fmt.Errorf("first message: %w", err)
		}
		ws.SetReadDeadline(time.Time{})
		switch m.Type {
		case "hello":
			return ws, nil
		case "redirect":
			ws.Close()
			redirects.Add(1)
			u = m.URL
		default:
			ws.Close()
			return nil, fmt.Errorf("first message is %q, want hello or redirect", m.Type)
		}
	}
	return nil, errors.New("redirected more than three times")
}

// redirects counts the redirects the load generators followed.
var redirects atomic.Int64

// backends are what a node keeps its state in and shares with the others:
// the database, the bus and counters, the room leases and object storage.
type backends struct {
	db       *store.DB
	bus      store.Bus
	counters store.Counters
	leases   store.Leases
	blobs    store.Blobs // nil: local disk
}

// openBackends opens the embedded default (SQLite, in-process bus and
// leases, local disk) or a cluster's (PostgreSQL, Redis, S3) as configured.
func openBackends(ctx context.Context, cfg *Config, log *slog.Logger) (*backends, error) {
	db, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	b := &backends{db: db}
	if cfg.Redis != "" {
		r, err := store.OpenRedis(ctx, cfg.Redis, redisPrefix)
		if err != nil {
			db.Close()
			return nil, err
		}
		b.bus, b.counters, b.leases = r, r, r
		log.Info("cluster bus ready", "backend", "redis", "node", cfg.NodeID)
	} else {
		b.bus, b.counters, b.leases = store.NewMemBus(), store.NewMemCounters(), store.NewMemLeases(nil)
		log.Info("bus ready", "backend", "in-process")
	}
	if b.blobs, err = openBlobs(ctx, cfg); err != nil {
		b.close()
		return nil, err
	}
	if b.blobs != nil {
		log.Info("object storage ready", "store", cfg.BlobStore)
	}
	return b, nil
}

func (b *backends) close() {
	b.bus.Close()
	b.db.Close()
}

// openBlobs connects to --blob-store; nil when none is configured.
func openBlobs(ctx context.Context, cfg *Config) (store.Blobs, error) {
	if cfg.BlobStore == "" {
		return nil, nil
	}
	access, secret, err := store.SplitCredentials(cfg.BlobCredentials)
	if err != nil {
		return nil, fmt.Errorf("--blob-credentials: %w", err)
	}
	return store.OpenS3(ctx, cfg.BlobStore, access, secret)
}
