package store

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Cluster timings: a node beats (and renews its leases) every BeatEvery; a
// node silent for NodeSilence is dead, and its leases lapse after LeaseTTL.
// A node trusts a lease only until LeaseTTL-leaseMargin after the renewal
// that last confirmed it, by its own clock, so a paused node stops before
// another can take its rooms.
const (
	BeatEvery   = 2 * time.Second
	NodeSilence = 6 * time.Second
	LeaseTTL    = 6 * time.Second
	leaseMargin = time.Second
	// roomLinger is how long a room with no socket stays with its owner, so
	// devices that reconnect come back to the same node.
	roomLinger = time.Minute
)

// RoomKey names a room (考场) for the leases.
func RoomKey(roomID int64) string { return "room:" + strconv.FormatInt(roomID, 10) }

// AttemptRoomKey names the room of an attempt that has no seat (a mock
// test): its PC and phone still meet on one node.
func AttemptRoomKey(attemptID int64) string { return "attempt:" + strconv.FormatInt(attemptID, 10) }

// Refusals of routing, each one the device retries in a second or two.
var (
	// ErrRoomMoving means a room's owner is dead (or draining) and its lease
	// has not lapsed yet.
	ErrRoomMoving = NewError("cluster", Unavailable, "room_moving", "the room is moving to another node")
	// ErrNoNode means no live node takes rooms.
	ErrNoNode = NewError("cluster", Unavailable, "no_node", "no live node can take the room")
	// ErrNotOwner refuses a write of a node whose lease of the room was
	// taken over (a larger fencing number has written for it).
	ErrNotOwner = NewError("cluster", Unavailable, "moved", "this node no longer owns the room; reconnect")
	// ErrClusterDown means the leases could not be read (Redis is away).
	ErrClusterDown = NewError("cluster", Unavailable, "cluster_down", "the cluster's coordination store does not answer")
)

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidNodeID reports whether id may name a node.
func ValidNodeID(id string) bool { return nodeIDPattern.MatchString(id) }

// Node is this process's place in the cluster: its heartbeat, the rooms it
// owns and where each room's sockets belong.
type Node struct {
	id, url string
	leases  Leases
	log     *slog.Logger
	now     func() time.Time
	load    func() (cpu float64, tracks int)

	mu       sync.Mutex
	owned    map[string]*holding
	nodes    map[string]NodeInfo // the live nodes at the last beat
	draining bool
	lost     []func(room string)
}

type holding struct {
	lease Lease
	valid time.Time // trusted until, by this node's clock
	conns int
	idle  time.Time // when conns fell to 0
}

// NodeConfig configures a Node.
type NodeConfig struct {
	ID, URL string
	Leases  Leases
	Logger  *slog.Logger
	// Load reports the node's CPU (cores busy) and media tracks; nil: none.
	Load func() (cpu float64, tracks int)
	Now  func() time.Time
}

// NewNode returns a node that has not yet beaten; Start announces it.
func NewNode(cfg NodeConfig) (*Node, error) {
	if !ValidNodeID(cfg.ID) {
		return nil, fmt.Errorf("node id %q: want 1-64 letters, digits, '.', '_' or '-'", cfg.ID)
	}
	n := &Node{id: cfg.ID, url: cfg.URL, leases: cfg.Leases, log: cfg.Logger, now: cfg.Now, load: cfg.Load,
		owned: map[string]*holding{}, nodes: map[string]NodeInfo{}}
	if n.now == nil {
		n.now = time.Now
	}
	if n.load == nil {
		n.load = func() (float64, int) { return 0, 0 }
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	return n, nil
}

// ID is the node's id.
func (n *Node) ID() string { return n.id }

// URL is where a browser reaches this node directly.
func (n *Node) URL() string { return n.url }

// OnLost adds a hook called (without locks held) with each room this node
// no longer owns: its lease lapsed or moved, or the node is draining.
func (n *Node) OnLost(f func(room string)) { n.lost = append(n.lost, f) }

// Start forgets the leases a former run of this node held and announces it.
func (n *Node) Start(ctx context.Context) error {
	if err := n.leases.Forget(ctx, n.id); err != nil {
		return err
	}
	return n.beat(ctx)
}

// Run beats and renews every BeatEvery until ctx ends, then gives up every
// room it holds.
func (n *Node) Run(ctx context.Context) {
	t := time.NewTicker(BeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			n.releaseAll(context.WithoutCancel(ctx))
			return
		case <-t.C:
			n.Tick(ctx)
		}
	}
}

// Tick is one beat: renew held rooms, drop lapsed or idle ones, announce
// the node's load and learn the other nodes.
func (n *Node) Tick(ctx context.Context) {
	n.renew(ctx)
	if err := n.beat(ctx); err != nil {
		n.log.Warn("cluster heartbeat failed", "node", n.id, "err", err)
	}
}

func (n *Node) beat(ctx context.Context) error {
	cpu, tracks := n.load()
	n.mu.Lock()
	info := NodeInfo{ID: n.id, URL: n.url, CPU: cpu, Tracks: tracks, Draining: n.draining}
	for _, h := range n.owned {
		info.Candidates += h.conns
	}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, BeatEvery)
	defer cancel()
	if err := n.leases.Beat(ctx, info, NodeSilence); err != nil {
		return err
	}
	nodes, err := n.leases.Nodes(ctx)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nodes = map[string]NodeInfo{}
	for _, x := range nodes {
		n.nodes[x.ID] = x
	}
	return nil
}

// renew extends every held room's lease in one round trip. A room with no
// socket for roomLinger is released; one whose lease moved or could not be
// confirmed in time is lost.
func (n *Node) renew(ctx context.Context) {
	start := n.now()
	n.mu.Lock()
	var keep []Lease
	var idle []Lease
	valid := map[string]time.Time{}
	for room, h := range n.owned {
		valid[room] = h.valid
		if h.conns == 0 && start.Sub(h.idle) > roomLinger {
			idle = append(idle, h.lease)
		} else {
			keep = append(keep, h.lease)
		}
	}
	n.mu.Unlock()
	for _, l := range idle {
		n.leases.Release(ctx, l)
		n.drop(l.Room, l)
	}
	rctx, cancel := context.WithTimeout(ctx, BeatEvery)
	oks, err := n.leases.RenewAll(rctx, keep, LeaseTTL)
	cancel()
	var lost []string
	for i, l := range keep {
		switch {
		case err == nil && oks[i]:
			n.confirm(l, start)
		case err == nil || !n.now().Before(valid[l.Room]):
			// Moved to another node, or unconfirmed past its trust.
			n.log.Warn("room lease lost", "node", n.id, "room", l.Room, "fence", l.Fence, "err", err)
			if n.drop(l.Room, l) {
				lost = append(lost, l.Room)
			}
		}
	}
	for _, room := range lost {
		n.tellLost(room)
	}
}

// confirm trusts a held lease for LeaseTTL-leaseMargin from start, when
// the renewal that confirmed it began.
func (n *Node) confirm(l Lease, start time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cur := n.owned[l.Room]; cur != nil && cur.lease == l {
		cur.valid = start.Add(LeaseTTL - leaseMargin)
	}
}

// drop forgets a held room if its lease is still l.
func (n *Node) drop(room string, l Lease) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h := n.owned[room]; h != nil && h.lease == l {
		delete(n.owned, room)
		return true
	}
	return false
}

func (n *Node) tellLost(room string) {
	for _, f := range n.lost {
		f(room)
	}
}

// Route says where the sockets of room belong: on this node (here), or at
// the URL of the node that owns it. A room with no owner gets one: the
// least loaded live node that is not draining.
func (n *Node) Route(ctx context.Context, room string) (here bool, url string, err error) {
	if h, ok := n.Holds(room); ok && h.Node == n.id {
		return true, "", nil
	}
	l, ok, err := n.leases.Owner(ctx, room)
	if err != nil {
		return false, "", fmt.Errorf("%w: %v", ErrClusterDown, err)
	}
	if !ok {
		pick, err := n.pick(ctx)
		if err != nil {
			return false, "", err
		}
		if l, err = n.leases.Claim(ctx, room, pick, LeaseTTL); err != nil {
			return false, "", fmt.Errorf("%w: %v", ErrClusterDown, err)
		}
	}
	if l.Node == n.id {
		if !n.adopt(l) {
			return false, "", ErrRoomMoving // draining: the next try goes elsewhere
		}
		if _, ok := n.Holds(room); !ok {
			// Still ours in Redis, but this node's trust lapsed (a late
			// renewal): confirm it now rather than refuse every message.
			start := n.now()
			if ok, err := n.leases.Renew(ctx, l, LeaseTTL); err != nil || !ok {
				return false, "", ErrRoomMoving
			}
			n.confirm(l, start)
		}
		return true, "", nil
	}
	n.mu.Lock()
	owner, live := n.nodes[l.Node]
	n.mu.Unlock()
	if !live {
		return false, "", ErrRoomMoving
	}
	return false, owner.URL, nil
}

// adopt starts holding a lease this node was given.
func (n *Node) adopt(l Lease) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.draining {
		return false
	}
	if h := n.owned[l.Room]; h == nil || h.lease != l {
		n.owned[l.Room] = &holding{lease: l, valid: n.now().Add(LeaseTTL - leaseMargin), idle: n.now()}
	}
	return true
}

// pick is the least loaded live node that takes rooms: fewest rooms, then
// fewest candidates, then least CPU.
func (n *Node) pick(ctx context.Context) (string, error) {
	nodes, err := n.leases.Nodes(ctx)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrClusterDown, err)
	}
	nodes = slices.DeleteFunc(nodes, func(x NodeInfo) bool { return x.Draining })
	if len(nodes) == 0 {
		return "", ErrNoNode
	}
	best := slices.MinFunc(nodes, func(a, b NodeInfo) int {
		if a.Rooms != b.Rooms {
			return a.Rooms - b.Rooms
		}
		if a.Candidates != b.Candidates {
			return a.Candidates - b.Candidates
		}
		if a.CPU != b.CPU {
			if a.CPU < b.CPU {
				return -1
			}
			return 1
		}
		return cmpString(a.ID, b.ID)
	})
	n.mu.Lock()
	for _, x := range nodes {
		n.nodes[x.ID] = x
	}
	n.mu.Unlock()
	return best.ID, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Holds returns the lease of a room this node owns and may still trust by
// its own clock; a node paused past its lease holds nothing.
func (n *Node) Holds(room string) (Lease, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := n.owned[room]
	if h == nil || !n.now().Before(h.valid) {
		return Lease{}, false
	}
	return h.lease, true
}

// Enter counts a socket of a room this node owns; Leave uncounts it.
func (n *Node) Enter(room string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h := n.owned[room]; h != nil {
		h.conns++
	}
}

// Leave uncounts a socket counted by Enter.
func (n *Node) Leave(room string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h := n.owned[room]; h != nil && h.conns > 0 {
		if h.conns--; h.conns == 0 {
			h.idle = n.now()
		}
	}
}

// Drain stops the node taking rooms and gives up every room it holds: the
// OnLost hooks close their sockets, and devices reconnect to other nodes.
func (n *Node) Drain(ctx context.Context) {
	n.mu.Lock()
	n.draining = true
	n.mu.Unlock()
	if err := n.beat(ctx); err != nil {
		n.log.Warn("cluster heartbeat failed", "node", n.id, "err", err)
	}
	n.releaseAll(ctx)
}

// Rooms is how many rooms the node holds.
func (n *Node) Rooms() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.owned)
}

// Draining reports whether Drain was called.
func (n *Node) Draining() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.draining
}

func (n *Node) releaseAll(ctx context.Context) {
	n.mu.Lock()
	held := n.owned
	n.owned = map[string]*holding{}
	n.mu.Unlock()
	for room, h := range held {
		n.leases.Release(ctx, h.lease)
		n.tellLost(room)
	}
}

// NodeHost reports whether host (host:port) is the host of a live node's
// URL, this node's included.
func (n *Node) NodeHost(host string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if hostOf(n.url) == host {
		return true
	}
	for _, x := range n.nodes {
		if hostOf(x.URL) == host {
			return true
		}
	}
	return false
}

func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// Origins are the origins (scheme://host) of the live nodes' URLs, this
// node's included, sorted.
func (n *Node) Origins() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	set := map[string]bool{}
	for _, raw := range append([]string{n.url}, nodeURLs(n.nodes)...) {
		if u, err := url.Parse(raw); err == nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https") {
			set[u.Scheme+"://"+u.Host] = true
		}
	}
	out := make([]string, 0, len(set))
	for o := range set {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

func nodeURLs(nodes map[string]NodeInfo) []string {
	var out []string
	for _, x := range nodes {
		out = append(out, x.URL)
	}
	return out
}

// URLOf is the URL of a live node (this one included).
func (n *Node) URLOf(id string) (string, bool) {
	if id == n.id {
		return n.url, true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	x, ok := n.nodes[id]
	return x.URL, ok
}

// Nodes lists the cluster's live nodes as the leases know them now, sorted
// by id.
func (n *Node) Nodes(ctx context.Context) ([]NodeInfo, error) {
	nodes, err := n.leases.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClusterDown, err)
	}
	slices.SortFunc(nodes, func(a, b NodeInfo) int { return cmpString(a.ID, b.ID) })
	return nodes, nil
}
