package store

import (
	"context"
	"sync"
	"time"
)

// A cluster of examhall nodes shares which nodes are alive and which node
// owns each room (a 考场, or a candidate's own mock test): the room's
// sockets, media and consoles meet on its owner. Ownership is a lease with an
// expiry, renewed by the owner, and a fencing number that grows at every
// change of owner. In a cluster the leases live in Redis; a single node
// keeps them in memory.
type Leases interface {
	// Beat records that a node is alive with its load, for ttl.
	Beat(ctx context.Context, n NodeInfo, ttl time.Duration) error
	// Nodes lists the live nodes, each with the rooms it holds.
	Nodes(ctx context.Context) ([]NodeInfo, error)
	// Owner returns the room's lease, if it has one.
	Owner(ctx context.Context, room string) (Lease, bool, error)
	// Claim makes node the owner of room for ttl unless the room already
	// has an owner; it returns the lease in force either way.
	Claim(ctx context.Context, room, node string, ttl time.Duration) (Lease, error)
	// Renew extends a lease held by l.Node; false when the room has another
	// owner now. A lease that expired with no new owner is taken back.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (bool, error)
	// RenewAll renews many leases at once (one round trip in Redis), in
	// order; an error means none was confirmed.
	RenewAll(ctx context.Context, ls []Lease, ttl time.Duration) ([]bool, error)
	// Release gives a room up if l is still its lease.
	Release(ctx context.Context, l Lease) error
	// Forget drops every lease a node held (a node starting afresh).
	Forget(ctx context.Context, node string) error
}

// NodeInfo is a node as its heartbeat describes it.
type NodeInfo struct {
	ID         string  `json:"id"`
	URL        string  `json:"url"`
	CPU        float64 `json:"cpu"` // cores busy, over the last beat
	Candidates int     `json:"candidates"`
	Tracks     int     `json:"tracks"`
	Draining   bool    `json:"draining,omitempty"`
	Rooms      int     `json:"rooms"` // filled in by Nodes
}

// Lease is a room's owner and the fencing number of its ownership.
type Lease struct {
	Room  string `json:"room"`
	Node  string `json:"node"`
	Fence int64  `json:"fence"`
	// Since, when not 0, says the room came to this owner after its former
	// owner fell silent (died, paused, cut off): the Unix time in ms when
	// that owner last renewed its lease, from when the room's devices
	// count as cut off. 0 after a release (a drain) or for a first owner.
	Since int64 `json:"since,omitempty"`
}

// MemLeases are the leases of one process: a single node, or several nodes
// in one test.
type MemLeases struct {
	mu     sync.Mutex
	now    func() time.Time
	nodes  map[string]memNode
	leases map[string]memLease
	fences map[string]int64
	last   map[string]int64 // room → when its owner last renewed (ms), until released
}

type memNode struct {
	info    NodeInfo
	expires time.Time
}

type memLease struct {
	Lease
	expires time.Time
}

// NewMemLeases returns empty in-process leases on a clock (nil: time.Now).
func NewMemLeases(now func() time.Time) *MemLeases {
	if now == nil {
		now = time.Now
	}
	return &MemLeases{now: now, nodes: map[string]memNode{}, leases: map[string]memLease{}, fences: map[string]int64{}, last: map[string]int64{}}
}

// Beat implements Leases.
func (m *MemLeases) Beat(_ context.Context, n NodeInfo, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nodes[n.ID] = memNode{n, m.now().Add(ttl)}
	return nil
}

// Nodes implements Leases.
func (m *MemLeases) Nodes(context.Context) ([]NodeInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	rooms := map[string]int{}
	for _, l := range m.leases {
		if now.Before(l.expires) {
			rooms[l.Node]++
		}
	}
	var out []NodeInfo
	for _, n := range m.nodes {
		if now.Before(n.expires) {
			n.info.Rooms = rooms[n.info.ID]
			out = append(out, n.info)
		}
	}
	return out, nil
}

// Owner implements Leases.
func (m *MemLeases) Owner(_ context.Context, room string) (Lease, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[room]
	if !ok || !m.now().Before(l.expires) {
		return Lease{}, false, nil
	}
	return l.Lease, true, nil
}

// Claim implements Leases.
func (m *MemLeases) Claim(_ context.Context, room, node string, ttl time.Duration) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if l, ok := m.leases[room]; ok && now.Before(l.expires) {
		return l.Lease, nil
	}
	m.fences[room]++
	l := Lease{Room: room, Node: node, Fence: m.fences[room], Since: m.last[room]}
	m.leases[room] = memLease{l, now.Add(ttl)}
	m.last[room] = now.UnixMilli()
	return l, nil
}

// Renew implements Leases.
func (m *MemLeases) Renew(_ context.Context, l Lease, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	cur, ok := m.leases[l.Room]
	if ok && now.Before(cur.expires) && cur.Lease != l {
		return false, nil
	}
	if !ok || !now.Before(cur.expires) {
		// Expired with no new owner: taken back only if no later owner
		// has come and gone meanwhile.
		if m.fences[l.Room] != l.Fence {
			return false, nil
		}
	}
	m.leases[l.Room] = memLease{l, now.Add(ttl)}
	m.last[l.Room] = now.UnixMilli()
	return true, nil
}

// RenewAll implements Leases.
func (m *MemLeases) RenewAll(ctx context.Context, ls []Lease, ttl time.Duration) ([]bool, error) {
	oks := make([]bool, len(ls))
	for i, l := range ls {
		oks[i], _ = m.Renew(ctx, l, ttl)
	}
	return oks, nil
}

// Release implements Leases.
func (m *MemLeases) Release(_ context.Context, l Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.leases[l.Room]; ok && cur.Lease == l {
		delete(m.leases, l.Room)
		delete(m.last, l.Room)
	}
	return nil
}

// Forget implements Leases.
func (m *MemLeases) Forget(_ context.Context, node string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for room, l := range m.leases {
		if l.Node == node {
			delete(m.leases, room)
		}
	}
	return nil
}
