package frontend

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/examhall/examhall/store"
)

// Socket limits and timings.
const (
	// maxMessage is the largest message a handler sees, unless its type
	// was registered with a larger limit (HandleLarge); a bigger one is
	// read to its end, discarded and answered with a too_large error, and
	// the connection stays up.
	maxMessage = 16 << 10
	// MaxSDPMessage is the limit of messages that carry a session
	// description: a console's answer has three media sections per
	// candidate (about 1 KiB each), so a chief watching a room of a hundred
	// candidates still fits.
	MaxSDPMessage = 512 << 10
	// hardLimit bounds the limit a message type may have.
	hardLimit = 1 << 20
	// closeLimit is the size past which a message closes the connection
	// (1009): up to it, what is over the type's limit is read and thrown
	// away as it arrives, never held.
	closeLimit   = 64 << 20
	writeTimeout = 10 * time.Second
	// The heartbeat: the server pings every 20 s (every websocket client
	// answers with a pong by itself), and a peer silent for 45 s (no
	// message, no pong) is declared dead; an outage is credited from the
	// last thing the peer said, not from when it was noticed. (A 5 s ping
	// with a 15 s silence cost 5,000 busy candidates half their sockets
	// during the start rush: BENCHMARKS.md.)
	pingEvery   = 20 * time.Second
	peerSilence = 45 * time.Second
	sendBuffer  = 256
)

// Inbound is a message from a device: {"type": ..., "id" or "seq": ..., ...}.
type Inbound struct {
	Type string          `json:"type"`
	ID   json.RawMessage `json:"id,omitempty"`
	Seq  *int64          `json:"seq,omitempty"`
	// Raw is the whole message, for the handler to decode its own fields.
	Raw []byte `json:"-"`
}

// MsgHandler handles one message type; a returned error is sent back as an
// error message carrying the request's id or seq.
type MsgHandler func(ctx context.Context, c *Conn, m *Inbound) error

// OpenFunc admits a connection before the upgrade (an error is an HTTP
// error reply) and may keep per-connection state on c.
type OpenFunc func(ctx context.Context, c *Conn, r *http.Request) error

// RouteFunc names the room a connection belongs to (store.RoomKey), after
// the login check and before the OnOpen checks: the room's owner serves it.
type RouteFunc func(ctx context.Context, c *Conn, r *http.Request) (room string, err error)

// Socket is one websocket endpoint: a hub that routes each message type to
// the package that registered a handler for it. It knows nothing of exams
// or media.
type Socket struct {
	s        *Server
	path     string
	public   bool // no login: OnOpen admits by other means (a pairing link)
	roles    []store.Role
	route    RouteFunc
	open     []OpenFunc
	ready    []func(c *Conn)
	closed   []func(c *Conn)
	handlers map[string]MsgHandler
	limits   map[string]int // per type, when over maxMessage
	largest  int            // the largest limit of any type
	upgrader websocket.Upgrader
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[*Conn]struct{}
	closing  bool // closeAll is waiting: no new connection is taken
}

// Socket registers a websocket endpoint at path for the given roles.
func (s *Server) Socket(path string, roles []store.Role) *Socket {
	sk := &Socket{s: s, path: path, roles: roles, handlers: map[string]MsgHandler{}, limits: map[string]int{}, largest: maxMessage, conns: map[*Conn]struct{}{}}
	sk.upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: s.sameOrigin}
	s.mux.Handle("GET "+path, http.HandlerFunc(sk.serve))
	s.sockets = append(s.sockets, sk)
	return sk
}

// PublicSocket registers a websocket endpoint that needs no login; its
// OnOpen checks must admit the connection.
func (s *Server) PublicSocket(path string) *Socket {
	sk := s.Socket(path, nil)
	sk.public = true
	return sk
}

// Route makes the socket belong to rooms: a connection that reaches a node
// which does not own its room is sent to the owner (a redirect message),
// and one whose room this node loses is closed with code "moved".
func (sk *Socket) Route(f RouteFunc) { sk.route = f }

// OnOpen adds a check run before the upgrade.
func (sk *Socket) OnOpen(f OpenFunc) { sk.open = append(sk.open, f) }

// OnReady adds a hook run once the connection is up.
func (sk *Socket) OnReady(f func(c *Conn)) { sk.ready = append(sk.ready, f) }

// OnClose adds a hook run when the connection has gone.
func (sk *Socket) OnClose(f func(c *Conn)) { sk.closed = append(sk.closed, f) }

// Handle routes messages of one type to h; they may be up to 16 KiB.
func (sk *Socket) Handle(typ string, h MsgHandler) { sk.handlers[typ] = h }

// HandleLarge routes messages of one type to h and lets them be up to
// limit bytes (at most 1 MiB): those that carry a session description.
func (sk *Socket) HandleLarge(typ string, limit int, h MsgHandler) {
	sk.handlers[typ] = h
	sk.limits[typ] = min(limit, hardLimit)
	sk.largest = max(sk.largest, sk.limits[typ])
}

// limit is the largest message of type typ the socket takes.
func (sk *Socket) limit(typ string) int {
	if n, ok := sk.limits[typ]; ok {
		return n
	}
	return maxMessage
}

// TooLargeError is a socket message over its type's limit.
type TooLargeError struct {
	Type  string // empty when the message was too large to be read at all
	Size  int64  // bytes received, or at least this many
	Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("message of type %q is %d bytes, over its limit of %d bytes", e.Type, e.Size, e.Limit)
}

func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// sameOrigin is the strict origin check: a browser may only open a socket
// from a page of this server, of its public URL or of another live node of
// its cluster (a page of one node opens its room's socket on the owner). Programs that send no Origin (the load
// generator) still need a valid session cookie.
func (s *Server) sameOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	return u.Host == r.Host || (s.cfg.PublicHost != "" && u.Host == s.cfg.PublicHost) || s.node.NodeHost(u.Host)
}

// Conn is one device's websocket. It has one reader and one writer
// goroutine; Send never blocks.
type Conn struct {
	ID      string
	User    *store.User
	Session *store.AuthSession
	ctx     context.Context
	cancel  context.CancelFunc
	send    chan []byte
	once    sync.Once
	done    chan struct{}
	mu      sync.Mutex
	values  map[any]any
	sk      *Socket
	room    string       // the room the connection belongs to, if its socket routes
	seen    atomic.Int64 // the server's time of the last message or pong, unix ns
}

// LastSeen is when the device last said anything (a message or a pong), by
// the server's clock.
func (c *Conn) LastSeen() time.Time { return time.Unix(0, c.seen.Load()) }

func (c *Conn) heard() { c.seen.Store(c.sk.s.now().UnixNano()) }

// Context ends when the connection closes.
func (c *Conn) Context() context.Context { return c.ctx }

// Set keeps a value for the connection's handlers.
func (c *Conn) Set(key, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values[key] = v
}

// Value returns a value set with Set.
func (c *Conn) Value(key any) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.values[key]
}

// ErrSlowPeer means a device did not read its messages fast enough.
var ErrSlowPeer = errors.New("peer too slow; connection closed")

// Send queues a message for the device. A device that falls sendBuffer
// messages behind is disconnected; it reconnects and resumes.
func (c *Conn) Send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	select {
	case <-c.done:
		return ErrConnClosed
	default:
	}
	select {
	case c.send <- b:
		return nil
	default:
		c.Close("slow", "")
		return ErrSlowPeer
	}
}

// ErrConnClosed means the connection has closed.
var ErrConnClosed = errors.New("connection closed")

// Close tells the device why it is being disconnected ({"type": "closed",
// "code": code, "message": ...}) and closes the connection.
func (c *Conn) Close(code, reason string) {
	c.once.Do(func() {
		msg := T("close." + code)
		b, _ := json.Marshal(map[string]any{"type": "closed", "code": code, "reason": reason, "message": msg})
		select {
		case c.send <- b:
		default:
		}
		close(c.done)
	})
}

// ReplyError sends an error message answering m.
func (c *Conn) ReplyError(m *Inbound, err error) {
	pe := publicError(err)
	if pe.Status >= 500 {
		c.sk.s.log.Error("socket message failed", "type", m.Type, "conn", c.ID, "err", err)
	}
	reply := map[string]any{"type": "error", "code": pe.Code, "message": pe.Message}
	if pe.Detail != "" {
		reply["detail"] = pe.Detail
	}
	if tl := (*TooLargeError)(nil); errors.As(err, &tl) {
		reply["limit"] = tl.Limit
		if tl.Type != "" {
			reply["for"] = tl.Type
		}
	}
	if m.ID != nil {
		reply["id"] = m.ID
	}
	if m.Seq != nil {
		reply["seq"] = *m.Seq
	}
	c.Send(reply)
}

// SendError sends an error message for a sequence number (an answer that
// was refused after its handler returned).
func (c *Conn) SendError(seq int64, err error) { c.ReplyError(&Inbound{Seq: &seq}, err) }

func (sk *Socket) serve(w http.ResponseWriter, r *http.Request) {
	// What the upgrade would refuse is refused before any check runs, so a
	// plain GET or another site's page never uses up a pairing link.
	if !websocket.IsWebSocketUpgrade(r) {
		sk.s.writeError(w, r, ErrNotWebSocket)
		return
	}
	if !sk.s.sameOrigin(r) {
		sk.s.writeError(w, r, ErrCrossOrigin)
		return
	}
	a := &Auth{}
	if !sk.public {
		var err error
		if a, err = sk.s.guard(r, sk.roles); err != nil {
			sk.s.writeError(w, r, err)
			return
		}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	c := &Conn{ID: rand.Text()[:12], User: a.User, Session: a.Session, ctx: ctx, cancel: cancel,
		send: make(chan []byte, sendBuffer), done: make(chan struct{}), values: map[any]any{}, sk: sk}
	if sk.route != nil {
		to, err := sk.routeTo(c, r)
		if err != nil {
			cancel()
			w.Header().Set("Retry-After", "1")
			sk.s.writeError(w, r, err)
			return
		}
		if to != "" {
			cancel()
			sk.redirect(w, r, to)
			return
		}
	}
	for _, open := range sk.open {
		if err := open(r.Context(), c, r); err != nil {
			cancel()
			sk.s.writeError(w, r, err)
			return
		}
	}
	ws, err := sk.upgrader.Upgrade(w, r, nil)
	if err != nil {
		cancel()
		return // the upgrader has answered
	}
	// The writer is counted under the lock closeAll takes before it waits,
	// so a socket upgraded while the server shuts down is either waited for
	// or refused, never raced.
	sk.mu.Lock()
	if sk.closing {
		sk.mu.Unlock()
		cancel()
		ws.Close()
		return
	}
	sk.conns[c] = struct{}{}
	sk.wg.Add(1)
	sk.mu.Unlock()
	if c.room != "" {
		sk.s.node.Enter(c.room)
	}
	sk.s.metrics.sockets.Inc()
	if c.room != "" {
		// The first message on a room's socket says the device reached
		// the room's owner (the other first message is a redirect).
		c.Send(map[string]string{"type": "hello", "node": sk.s.node.ID()})
	}
	go sk.writeLoop(c, ws)
	for _, f := range sk.ready {
		f(c)
	}
	sk.readLoop(c, ws)
}

// readLoop is the connection's one reader: it reads each message, refuses
// what is too large or malformed, and hands the rest to their handlers. When
// it returns the connection is released.
func (sk *Socket) readLoop(c *Conn, ws *websocket.Conn) {
	defer sk.release(c)
	ws.SetReadLimit(closeLimit)
	ws.SetReadDeadline(time.Now().Add(peerSilence))
	c.heard()
	ws.SetPongHandler(func(string) error {
		c.heard()
		return ws.SetReadDeadline(time.Now().Add(peerSilence))
	})
	buf := new(bytes.Buffer)
	for {
		_, rd, err := ws.NextReader()
		if err != nil {
			return
		}
		ws.SetReadDeadline(time.Now().Add(peerSilence))
		c.heard()
		buf.Reset()
		n, err := io.Copy(buf, io.LimitReader(rd, int64(sk.largest)+1))
		if err != nil {
			return
		}
		m := &Inbound{}
		if n > int64(sk.largest) {
			rest, err := io.Copy(io.Discard, rd)
			if err != nil {
				return
			}
			m.Type = peekType(buf.Bytes())
			sk.tooLarge(c, m, &TooLargeError{Type: m.Type, Size: n + rest, Limit: sk.limit(m.Type)})
			continue
		}
		if err := json.Unmarshal(buf.Bytes(), m); err != nil || m.Type == "" {
			if n > maxMessage {
				sk.tooLarge(c, m, &TooLargeError{Size: n, Limit: maxMessage})
				continue
			}
			sk.s.metrics.socketMessages.WithLabelValues("malformed").Inc()
			c.ReplyError(m, ErrBadRequest)
			continue
		}
		if limit := sk.limit(m.Type); n > int64(limit) {
			sk.tooLarge(c, m, &TooLargeError{Type: m.Type, Size: n, Limit: limit})
			continue
		}
		m.Raw = bytes.Clone(buf.Bytes())
		if !sk.dispatch(c, m) {
			return
		}
	}
}

// dispatch hands a message to the handler of its type and answers its
// error. It returns false when the connection has been closed because this
// node no longer owns the connection's room.
func (sk *Socket) dispatch(c *Conn, m *Inbound) bool {
	h, ok := sk.handlers[m.Type]
	if !ok {
		sk.s.metrics.socketMessages.WithLabelValues("unknown").Inc()
		c.ReplyError(m, ErrUnknownType)
		return true
	}
	if c.room != "" {
		// A node that lost the room (paused past its lease, drained)
		// handles nothing more of it: the device goes to the new owner.
		if _, ok := sk.s.node.Holds(c.room); !ok {
			c.Close("moved", "")
			return false
		}
	}
	sk.s.metrics.socketMessages.WithLabelValues(m.Type).Inc()
	if err := h(c.ctx, c, m); err != nil {
		c.ReplyError(m, err)
		if errors.Is(err, store.ErrNotOwner) {
			c.Close("moved", "")
			return false
		}
	}
	return true
}

// release closes a connection whose reader has ended, runs the OnClose
// functions and forgets the connection.
func (sk *Socket) release(c *Conn) {
	c.Close("gone", "")
	c.cancel()
	for _, f := range sk.closed {
		f(c)
	}
	sk.mu.Lock()
	delete(sk.conns, c)
	sk.mu.Unlock()
	if c.room != "" {
		sk.s.node.Leave(c.room)
	}
	sk.s.metrics.sockets.Dec()
}

func (sk *Socket) writeLoop(c *Conn, ws *websocket.Conn) {
	defer sk.wg.Done()
	defer ws.Close()
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	write := func(b []byte) error {
		ws.SetWriteDeadline(time.Now().Add(writeTimeout))
		return ws.WriteMessage(websocket.TextMessage, b)
	}
	for {
		select {
		case b := <-c.send:
			if err := write(b); err != nil {
				c.Close("gone", "")
				return
			}
		case <-ping.C:
			if !sk.sessionLive(c) {
				c.Close("session_expired", "")
				continue
			}
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				c.Close("gone", "")
				return
			}
		case <-c.done:
			// Flush what is queued (the closing message last), then say goodbye.
			for {
				select {
				case b := <-c.send:
					if write(b) != nil {
						return
					}
					continue
				default:
				}
				break
			}
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return
		}
	}
}

// peekType finds the type of a message cut short, when the type comes
// before the part that made it too large, so the device can be told which
// of its messages was refused.
func peekType(b []byte) string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return ""
		}
		var typ string
		if key == "type" && json.Unmarshal(v, &typ) == nil && len(typ) <= 64 {
			return typ
		}
	}
	return ""
}

// tooLarge refuses a message over its limit: the device is told (an
// error with code too_large, the type, size and limit in its detail, and
// the message's id when it could be read) and the log says so too.
func (sk *Socket) tooLarge(c *Conn, m *Inbound, err *TooLargeError) {
	sk.s.metrics.socketMessages.WithLabelValues("too_large").Inc()
	sk.s.log.Warn("socket message refused: too large", "socket", sk.path, "conn", c.ID, "type", err.Type, "bytes", err.Size, "limit", err.Limit)
	c.ReplyError(m, err)
}

// sessionLive says whether the login a socket was opened with has not
// expired. A logout closes its sockets at once, on every node
// (closeSession, LogoutTopic).
func (sk *Socket) sessionLive(c *Conn) bool {
	return c.Session == nil || sk.s.now().Before(c.Session.ExpiresAt)
}

// closeSession disconnects this node's sockets opened with a login that
// has just ended.
func (s *Server) closeSession(id int64) {
	for _, sk := range s.sockets {
		sk.mu.Lock()
		for c := range sk.conns {
			if c.Session != nil && c.Session.ID == id {
				c.Close("session_expired", "")
			}
		}
		sk.mu.Unlock()
	}
}

// routeTo finds the connection's room and its owner: "" when this node
// owns it (the connection is then counted in the room), else the URL of the
// socket on the owner.
func (sk *Socket) routeTo(c *Conn, r *http.Request) (string, error) {
	room, err := sk.route(r.Context(), c, r)
	if err != nil {
		return "", err
	}
	here, nodeURL, err := sk.s.node.Route(r.Context(), room)
	if err != nil {
		return "", err
	}
	if here {
		c.room = room
		return "", nil
	}
	u, err := url.Parse(nodeURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: node URL %q: %v", store.ErrRoomMoving, nodeURL, err)
	}
	u.Scheme = map[string]string{"https": "wss", "http": "ws"}[u.Scheme]
	if u.Scheme == "" {
		return "", fmt.Errorf("%w: node URL %q is not http(s)", store.ErrRoomMoving, nodeURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + r.URL.Path
	u.RawQuery = r.URL.RawQuery
	return u.String(), nil
}

// redirect sends a device to the socket of its room's owner: the upgrade
// succeeds, the first and only message is {"type": "redirect", "url": ...},
// then the connection closes (1000). Browsers cannot follow an HTTP
// redirect of a websocket handshake, so the message carries it.
func (sk *Socket) redirect(w http.ResponseWriter, r *http.Request, to string) {
	ws, err := sk.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	sk.s.metrics.socketMessages.WithLabelValues("redirect").Inc()
	ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	if ws.WriteJSON(map[string]string{"type": "redirect", "url": to}) == nil {
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "moved"), time.Now().Add(time.Second))
	}
}

// closeRoom disconnects this node's sockets of a room it no longer owns,
// with code "moved": the devices reconnect and reach the new owner.
func (s *Server) closeRoom(room string) {
	for _, sk := range s.sockets {
		sk.mu.Lock()
		for c := range sk.conns {
			if c.room == room {
				c.Close("moved", "")
			}
		}
		sk.mu.Unlock()
	}
}

// closeAll disconnects every device (at shutdown) and waits for the writers.
func (sk *Socket) closeAll() {
	sk.mu.Lock()
	sk.closing = true
	for c := range sk.conns {
		c.Close("shutdown", "")
	}
	sk.mu.Unlock()
	sk.wg.Wait()
	sk.mu.Lock()
	sk.closing = false
	sk.mu.Unlock()
}

// CloseSockets disconnects every websocket, telling each device the server is
// restarting, and waits until their writers are done.
func (s *Server) CloseSockets() {
	for _, sk := range s.sockets {
		sk.closeAll()
	}
}
