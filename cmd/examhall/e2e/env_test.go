package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/examhall/examhall/cmd/examhall/internal/app"
	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/accounts"
	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/exam/notify"
	"github.com/examhall/examhall/frontend"
	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// clock is a settable server clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// examEnv is a real server (web layer, hub, engine) on loopback with one
// session of candidates, on a fresh database.
type examEnv struct {
	t      *testing.T
	db     *store.DB
	bus    *store.MemBus
	clock  *clock
	engine *exam.Engine
	web    *frontend.Server
	stop   func()
	srv    *httptest.Server
	// cut, while set, refuses new sockets as an unreachable network would.
	cut   atomic.Bool
	cands []cand
	admin cand
	// staff: invA is responsible for every candidate in room R01, invB
	// works there too; chief is a chief invigilator of room R02 in the same
	// session; invD works in R02; reviewer is a reviewer.
	invA, invB, chief, invD, reviewer cand
	// panel is a panel member who sits on no panel yet.
	panel    cand
	proc     *proctor.Service
	media    *media.Service
	cert     *certify.Service
	dataDir  string
	session  int64
	room     int64
	exam     store.Exam
	keys     map[int64][]int
	duration int
	// faceModels and faceCheck turn on the browser's and the server's face
	// analysis (restart the server after setting them).
	faceModels string
	faceCheck  bool
	// goneAfter, when set, is the media service's GoneAfter.
	goneAfter time.Duration
	// leases are shared by the env's nodes (secondNode), as Redis is by
	// a cluster's; node names this one.
	leases *store.MemLeases
	node   string
	// blobs, when set before the server starts, is the object storage the
	// env's nodes share.
	blobs store.Blobs
	// notify, set before the server starts, is how its notifications go.
	notify notify.Config
}

type cand struct {
	id       int64
	ticket   string
	password string
	attempt  int64
}

// bank makes a small bank: 12 single, 6 multiple, 6 true/false in the
// formal pool, and 10, 5 and 5 in the practice pool (stems say which).
func bank(t *testing.T, db *store.DB, programme int64) map[int64][]int {
	keys := map[int64][]int{}
	pool := exam.PoolFormal
	add := func(kind string, opts []string, key []int) {
		o, _ := json.Marshal(opts)
		k, _ := json.Marshal(key)
		q := &store.Question{ProgrammeID: programme, Kind: kind, Stem: fmt.Sprintf("%s %s 题 %d", pool, kind, len(keys)+1), Options: string(o), Answer: string(k), Tags: `["t"]`, Difficulty: 1, Pool: pool}
		if err := db.Create(q).Error; err != nil {
			t.Fatal(err)
		}
		keys[q.ID] = key
	}
	for i := range 12 {
		add("single", []string{"甲", "乙", "丙", "丁"}, []int{i % 4})
	}
	for range 6 {
		add("multiple", []string{"甲", "乙", "丙", "丁"}, []int{0, 2})
	}
	for i := range 6 {
		add("truefalse", exam.TrueFalseOptions, []int{i % 2})
	}
	pool = exam.PoolPractice
	for i := range 10 {
		add("single", []string{"甲", "乙", "丙", "丁"}, []int{i % 4})
	}
	for range 5 {
		add("multiple", []string{"甲", "乙", "丙", "丁"}, []int{0, 2})
	}
	for i := range 5 {
		add("truefalse", exam.TrueFalseOptions, []int{i % 2})
	}
	return keys
}

const testBlueprint = `{"sections":[
 {"title_zh":"单选","title_en":"Single","kind":"single","count":10,"points":5},
 {"title_zh":"多选","title_en":"Multiple","kind":"multiple","count":5,"points":6},
 {"title_zh":"判断","title_en":"True/false","kind":"truefalse","count":5,"points":4}]}`

func newExamEnv(t *testing.T, kind string, candidates int) *examEnv {
	t.Helper()
	e := &examEnv{t: t, db: storetest.NewDB(t, kind), bus: store.NewMemBus(), clock: &clock{t: time.Now().UTC()}, duration: 120, dataDir: t.TempDir()}
	ctx := context.Background()
	p := &store.Programme{Code: "p", NameZh: "项目", NameEn: "P", Rules: "{}"}
	e.db.Create(p)
	e.keys = bank(t, e.db, p.ID)
	e.exam = store.Exam{ProgrammeID: p.ID, Code: "formal", Kind: "formal", TitleZh: "理论考试", TitleEn: "Theory", DurationMinutes: e.duration, PassMark: 80, Blueprint: testBlueprint}
	e.db.Create(&e.exam)
	e.db.Create(&store.Exam{ProgrammeID: p.ID, Code: "mock", Kind: "mock", TitleZh: "模拟", TitleEn: "Mock", DurationMinutes: 30, PassMark: 80, Blueprint: testBlueprint})
	now := e.clock.now()
	s := &store.ExamSession{ExamID: e.exam.ID, Code: "s1", Title: "场次", StartsAt: now.Add(-time.Minute), AdmissionEndsAt: now.Add(time.Hour), EndsAt: now.Add(4 * time.Hour), AdmissionMode: "open"}
	e.db.Create(s)
	e.session = s.ID
	r := &store.Room{SessionID: s.ID, Code: "R01", Name: "第一考场"}
	e.db.Create(r)
	for i := range candidates {
		c := cand{ticket: fmt.Sprintf("2026%06d", i+1), password: accounts.NewCandidatePassword()}
		h, _ := accounts.HashPassword(c.password, store.RoleCandidate, accounts.Generated)
		u := &store.User{Role: store.RoleCandidate, Username: c.ticket, PasswordHash: h, DisplayName: "考生"}
		if err := e.db.Create(u).Error; err != nil {
			t.Fatal(err)
		}
		c.id = u.ID
		if err := e.db.Create(&store.Seat{SessionID: s.ID, RoomID: r.ID, CandidateID: u.ID, Ticket: c.ticket, SeatNo: i + 1}).Error; err != nil {
			t.Fatal(err)
		}
		e.cands = append(e.cands, c)
	}
	staff := func(role store.Role, name string, chief bool) cand {
		c := cand{ticket: name, password: "password of " + name}
		hash, _ := accounts.HashPassword(c.password, role, accounts.Chosen)
		u := &store.User{Role: role, Username: name, PasswordHash: hash, DisplayName: name, Chief: chief}
		if err := e.db.Create(u).Error; err != nil {
			t.Fatal(err)
		}
		c.id = u.ID
		return c
	}
	e.admin = staff(store.RoleAdmin, "admin", false)
	e.invA, e.invB = staff(store.RoleInvigilator, "inva", false), staff(store.RoleInvigilator, "invb", false)
	e.chief, e.invD = staff(store.RoleInvigilator, "chief", true), staff(store.RoleInvigilator, "invd", false)
	e.reviewer = staff(store.RoleReviewer, "reviewer", false)
	e.panel = staff(store.RolePanel, "panel0", false)
	r2 := &store.Room{SessionID: s.ID, Code: "R02", Name: "第二考场"}
	e.db.Create(r2)
	for _, ri := range []store.RoomInvigilator{{RoomID: r.ID, UserID: e.invA.id}, {RoomID: r.ID, UserID: e.invB.id}, {RoomID: r2.ID, UserID: e.chief.id}, {RoomID: r2.ID, UserID: e.invD.id}} {
		e.db.Create(&ri)
	}
	e.db.Model(&store.Seat{}).Where("room_id = ?", r.ID).Update("invigilator_id", e.invA.id)
	e.room = r.ID
	if n, err := exam.ScheduleSession(ctx, e.db.DB, s.ID, nil); err != nil || n != candidates {
		t.Fatalf("schedule: %d %v", n, err)
	}
	for i := range e.cands {
		var a store.Attempt
		e.db.Where("candidate_id = ?", e.cands[i].id).Take(&a)
		e.cands[i].attempt = a.ID
	}
	e.startServer()
	return e
}

// startServer starts (or restarts) the engine and web server on the same database.
func (e *examEnv) startServer() {
	if e.leases == nil {
		e.leases, e.node = store.NewMemLeases(nil), "n1"
	}
	var web *frontend.Server
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.cut.Load() && strings.HasPrefix(r.URL.Path, "/ws/") {
			http.Error(w, "network cut by the test", http.StatusServiceUnavailable)
			return
		}
		web.ServeHTTP(w, r)
	}))
	node, err := store.NewNode(store.NodeConfig{ID: e.node, URL: "http://" + e.srv.Listener.Addr().String(), Leases: e.leases})
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := app.Start(context.Background(), app.Config{DB: e.db, Bus: e.bus, Counters: store.NewMemCounters(), Blobs: e.blobs, Node: node, DataDir: e.dataDir,
		Exam:    exam.Config{Now: e.clock.now, SweepEvery: 20 * time.Millisecond},
		Proctor: proctor.Config{TickEvery: 50 * time.Millisecond},
		Media:   media.Config{LoopbackOnly: true, FaceCheck: e.faceCheck, GoneAfter: e.goneAfter},
		Certify: certify.Config{Now: e.clock.now},
		Web:     frontend.Config{FaceModels: e.faceModels, BounceToken: testBounceToken},
		Notify:  e.withBase(e.notify)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.engine, e.proc, e.media, e.cert, web = a.Engine, a.Proctor, a.Media, a.Certify, a.Web
	e.web = web
	e.srv.Start()
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		e.srv.CloseClientConnections()
		e.srv.Close()
		a.Close()
	}
	e.t.Cleanup(e.stop)
}

// withBase points a notification config's links at this env's server.
func (e *examEnv) withBase(c notify.Config) notify.Config {
	c.BaseURL = "http://" + e.srv.Listener.Addr().String()
	return c
}

// secondNode starts another node on the same database and bus, as a
// cluster of two would have: its own engine, web server and sockets. Its
// accounts are e's.
func (e *examEnv) secondNode() *examEnv {
	n := &examEnv{t: e.t, db: e.db, bus: e.bus, clock: e.clock, dataDir: e.t.TempDir(), cands: e.cands, admin: e.admin,
		invA: e.invA, invB: e.invB, chief: e.chief, invD: e.invD, reviewer: e.reviewer, panel: e.panel, session: e.session, room: e.room,
		leases: e.leases, node: "n2", blobs: e.blobs}
	n.startServer()
	return n
}

// login logs a candidate in and returns a client with their cookie.
func (e *examEnv) login(c cand) *http.Client {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar}
	resp, err := hc.Get(e.srv.URL + "/api/csrf")
	if err != nil {
		e.t.Fatal(err)
	}
	var tok struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/login", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, c.ticket, c.password)))
	req.Header.Set("X-CSRF-Token", tok.CSRFToken)
	resp, err = hc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		e.t.Fatalf("login %s: %v %v", c.ticket, resp.StatusCode, err)
	}
	resp.Body.Close()
	return hc
}

// client is a candidate's exam socket.
type client struct {
	t       *testing.T
	ws      *websocket.Conn
	msgs    chan map[string]any
	pending []map[string]any
}

func (e *examEnv) dial(hc *http.Client, attempt int64) (*client, *http.Response, error) {
	return e.open(hc, fmt.Sprintf("/ws/exam?attempt=%d", attempt))
}

// open opens a socket of the server as hc's user and reads it in the background.
// A node that does not own the socket's room redirects it, as it does a
// browser's, to the owner; the client follows.
func (e *examEnv) open(hc *http.Client, path string) (*client, *http.Response, error) {
	ws, resp, err := dialRoom(hc, "ws"+strings.TrimPrefix(e.srv.URL, "http")+path)
	if err != nil {
		return nil, resp, err
	}
	c := &client{t: e.t, ws: ws, msgs: make(chan map[string]any, 1024)}
	go func() {
		defer close(c.msgs)
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				return
			}
			c.msgs <- m
		}
	}()
	e.t.Cleanup(func() { ws.Close() })
	return c, resp, nil
}

func (e *examEnv) connect(c cand) *client {
	e.t.Helper()
	cl, resp, err := e.dial(e.login(c), c.attempt)
	if err != nil {
		e.t.Fatalf("dial: %v %v", err, resp)
	}
	return cl
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatal(err)
	}
}

// await returns the first message for which match is true; others wait
// for a later await (time syncs are dropped).
func (c *client) await(what string, match func(m map[string]any) bool) map[string]any {
	c.t.Helper()
	for i, m := range c.pending {
		if match(m) {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			return m
		}
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("connection closed while waiting for %s", what)
			}
			if match(m) {
				return m
			}
			if m["type"] != "time" {
				c.pending = append(c.pending, m)
			}
		case <-timeout:
			c.t.Fatalf("no %s within 5 s", what)
		}
	}
}

func is(typ string, kv ...any) func(map[string]any) bool {
	return func(m map[string]any) bool {
		if m["type"] != typ {
			return false
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if fmt.Sprint(m[kv[i].(string)]) != fmt.Sprint(kv[i+1]) {
				return false
			}
		}
		return true
	}
}

// paper starts the attempt and returns the paper.
func (c *client) start() map[string]any {
	c.send(map[string]any{"type": "start", "id": "s"})
	return c.await("paper", is("paper", "id", "s"))
}

func questions(paper map[string]any) []map[string]any {
	var out []map[string]any
	for _, q := range paper["questions"].([]any) {
		out = append(out, q.(map[string]any))
	}
	return out
}

func (e *examEnv) attempt(id int64) store.Attempt {
	var a store.Attempt
	if err := e.db.Take(&a, id).Error; err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *examEnv) answers(id int64) map[int64]string {
	var as []store.Answer
	e.db.Where("attempt_id = ?", id).Find(&as)
	out := map[int64]string{}
	for _, a := range as {
		out[a.QuestionID] = a.Value
	}
	return out
}

func (e *examEnv) events(id int64) []store.AttemptEvent {
	var es []store.AttemptEvent
	e.db.Where("attempt_id = ?", id).Order("n").Find(&es)
	return es
}

func wsDialer(hc *http.Client) *websocket.Dialer {
	return &websocket.Dialer{Jar: hc.Jar, HandshakeTimeout: 5 * time.Second}
}

func csrf(t *testing.T, hc *http.Client, base string) string {
	resp, err := hc.Get(base + "/api/me")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.NewDecoder(resp.Body).Decode(&me)
	return me.CSRFToken
}

func itoa(n int64) string { return fmt.Sprint(n) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// dialRoom opens a room's socket and follows the redirect a node that does
// not own the room answers with (at most three); the owner's hello is
// read and dropped.
func dialRoom(hc *http.Client, u string) (*websocket.Conn, *http.Response, error) {
	for range 3 {
		ws, resp, err := wsDialer(hc).Dial(u, nil)
		if err != nil {
			return nil, resp, err
		}
		var m struct{ Type, URL string }
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := ws.ReadJSON(&m); err != nil {
			ws.Close()
			return nil, resp, fmt.Errorf("first message: %w", err)
		}
		ws.SetReadDeadline(time.Time{})
		switch m.Type {
		case "hello":
			return ws, resp, nil
		case "redirect":
			ws.Close()
			u = m.URL
		default:
			ws.Close()
			return nil, resp, fmt.Errorf("first message is %q, want hello or redirect", m.Type)
		}
	}
	return nil, nil, errors.New("redirected three times")
}
