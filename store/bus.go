package store

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
)

// Message is one event on the bus.
type Message struct {
	Topic string
	Data  []byte
}

// Bus carries events between the parts of the platform and, in a cluster,
// between nodes. Delivery is best effort: durable state lives in the
// database, and a subscriber too slow to keep up loses messages rather than
// stalling the publisher. A topic pattern may end in '*' to match every topic
// with that prefix.
type Bus interface {
	Publish(ctx context.Context, topic string, data []byte) error
	// Subscribe returns once the subscription is active: a message published
	// after it returns is delivered.
	Subscribe(ctx context.Context, pattern string) (*Subscription, error)
	Ping(ctx context.Context) error
	Close() error
}

// Subscription receives the messages of one topic pattern until closed.
type Subscription struct {
	C     <-chan Message
	close func()
	once  sync.Once
}

// Close ends the subscription; C is closed after it.
func (s *Subscription) Close() { s.once.Do(s.close) }

// subBuffer is how many messages a subscriber may fall behind before the
// in-process bus drops messages for it.
const subBuffer = 256

// MemBus is the in-process bus of a single node.
type MemBus struct {
	mu      sync.RWMutex
	subs    map[*memSub]struct{}
	closed  bool
	dropped atomic.Int64
}

type memSub struct {
	pattern string
	ch      chan Message
}

// NewMemBus returns an empty in-process bus.
func NewMemBus() *MemBus { return &MemBus{subs: map[*memSub]struct{}{}} }

// Publish delivers data to every matching subscriber that has room for it.
func (b *MemBus) Publish(ctx context.Context, topic string, data []byte) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrBusClosed
	}
	for s := range b.subs {
		if !matchTopic(s.pattern, topic) {
			continue
		}
		select {
		case s.ch <- Message{Topic: topic, Data: data}:
		default:
			b.dropped.Add(1)
		}
	}
	return nil
}

// Subscribe starts receiving messages whose topic matches pattern.
func (b *MemBus) Subscribe(ctx context.Context, pattern string) (*Subscription, error) {
	s := &memSub{pattern: pattern, ch: make(chan Message, subBuffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrBusClosed
	}
	b.subs[s] = struct{}{}
	return &Subscription{C: s.ch, close: func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[s]; ok {
			delete(b.subs, s)
			close(s.ch)
		}
	}}, nil
}

// Dropped counts messages lost to slow subscribers.
func (b *MemBus) Dropped() int64 { return b.dropped.Load() }

// Ping always succeeds unless the bus is closed.
func (b *MemBus) Ping(context.Context) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return ErrBusClosed
	}
	return nil
}

// Close ends every subscription.
func (b *MemBus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		delete(b.subs, s)
		close(s.ch)
	}
	b.closed = true
	return nil
}

func matchTopic(pattern, topic string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(topic, p)
	}
	return pattern == topic
}

// SignalTopic carries what the other parts (the exam engine, the media
// service and its face check, the pages through the exam socket) observe
// of a candidate to the proctor, which turns signals into flags. Its one
// message is SignalMessage.
const SignalTopic = "proctor.signals"

// SignalMessage is a signal on SignalTopic: a kind (proctor's rule keys,
// e.g. "video_lost", "face_absent") from a source ("server", "media",
// "face", "page"), with a phase: "start" and "end" for a lasting condition,
// "instant" for an event.
type SignalMessage struct {
	AttemptID int64          `json:"attempt_id"`
	Source    string         `json:"source"`
	Kind      string         `json:"kind"`
	Phase     string         `json:"phase"`
	Detail    map[string]any `json:"detail,omitempty"`
}

// PublishSignal puts a signal on the bus for the proctor.
func PublishSignal(ctx context.Context, bus Bus, s SignalMessage) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return bus.Publish(ctx, SignalTopic, b)
}
