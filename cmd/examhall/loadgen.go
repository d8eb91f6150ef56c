package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// LoadResult is what `examhall loadgen exam` prints.
type LoadResult struct {
	Candidates   int     `json:"candidates"`
	Connected    int     `json:"connected"`
	AnswersSent  int64   `json:"answers_sent"`
	AnswersAcked int64   `json:"answers_acked"`
	AnswersLost  int64   `json:"answers_lost"`
	AckP50ms     float64 `json:"ack_p50_ms"`
	AckP99ms     float64 `json:"ack_p99_ms"`
	LoginP50ms   float64 `json:"login_p50_ms"`
	LoginP99ms   float64 `json:"login_p99_ms"`
	// RushSeconds is how long it took all candidates to log in, connect and
	// start (the start rush); answering begins after it, for Duration.
	RushSeconds float64 `json:"rush_seconds"`
	Reconnects  int64   `json:"reconnects"`
	// Outages are the times from a socket's loss to the next socket that
	// resumed the attempt (a failover's cost to a candidate).
	OutageP50ms float64 `json:"outage_p50_ms,omitempty"`
	OutageMaxms float64 `json:"outage_max_ms,omitempty"`
	// Redirects counts sockets sent on from a node that did not own the
	// candidate's room to its owner.
	Redirects int64 `json:"redirects"`
	Errors    int64 `json:"errors"`
	// ErrorSamples are a few of the errors, to say what went wrong.
	ErrorSamples []string `json:"error_samples,omitempty"`
}

// loadConfig configures an exam load run.
type loadConfig struct {
	Demo        *DemoFile
	Candidates  int
	Duration    time.Duration
	AnswerEvery time.Duration
	// LoginConcurrency bounds logins in flight (the start rush).
	LoginConcurrency int
	// Entries are the URLs sockets are opened at (a cluster's nodes, or
	// its one entry); candidate i starts at entry i and moves to the next
	// when one does not answer. Default: the demo's URL.
	Entries []string
}

func loadgenCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "proctor" {
		return loadgenProctor(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "media" {
		return loadgenMedia(ctx, args[1:], stdout, stderr)
	}
	if len(args) == 0 || args[0] != "exam" {
		return errors.New("usage: examhall loadgen exam --demo DIR/demo.json --candidates N --duration D --answer-every I\n" +
			"       examhall loadgen proctor --demo DIR/demo.json --invigilators N --duration D --signal-every I")
	}
	fs := flag.NewFlagSet("examhall loadgen exam", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demoPath := fs.String("demo", "data/demo.json", "the demo.json written by examhall demo")
	n := fs.Int("candidates", 100, "how many of the demo's candidates to drive")
	dur := fs.Duration("duration", time.Minute, "how long to answer")
	every := fs.Duration("answer-every", 2*time.Second, "each candidate answers this often")
	conc := fs.Int("login-concurrency", 64, "logins in flight at once")
	entry := fs.String("url", "", "comma-separated URLs where sockets open: the cluster's entry or its nodes (default: the demo's URL); they follow redirects to their room's node")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	demo, err := loadDemo(*demoPath)
	if err != nil {
		return err
	}
	var entries []string
	for _, u := range strings.Split(*entry, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u == "" {
			continue
		}
		if err := loopbackOnly(u); err != nil {
			return err
		}
		entries = append(entries, u)
	}
	res, err := runExamLoad(ctx, loadConfig{Demo: demo, Candidates: *n, Duration: *dur, AnswerEvery: *every, LoginConcurrency: *conc, Entries: entries})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	return enc.Encode(res)
}

// loadDemo reads demo.json for a load run against its server, which must be
// on loopback.
func loadDemo(path string) (*DemoFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var demo DemoFile
	if err := json.Unmarshal(b, &demo); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &demo, loopbackOnly(demo.URL)
}

// useEntry points a load run at another entry than the demo's URL (a
// cluster's entry or one of its nodes), on loopback only.
func (d *DemoFile) useEntry(u string) error {
	if u = strings.TrimRight(u, "/"); u == "" {
		return nil
	}
	if err := loopbackOnly(u); err != nil {
		return err
	}
	d.URL = u
	return nil
}

// loopbackOnly keeps load off every machine but this one.
func loopbackOnly(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return nil
	}
	return fmt.Errorf("loadgen only drives a server on loopback, not %s", u.Host)
}

// stats collects latencies and counts from every simulated candidate.
type stats struct {
	mu        sync.Mutex
	acks      []float64
	logins    []float64
	outages   []float64
	samples   []string
	sent      atomic.Int64
	acked     atomic.Int64
	lost      atomic.Int64
	errors    atomic.Int64
	reconnect atomic.Int64
	connected atomic.Int64
}

func (s *stats) err(e error) {
	s.errors.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) < 5 {
		s.samples = append(s.samples, e.Error())
	}
}

func (s *stats) add(list *[]float64, d time.Duration) {
	s.mu.Lock()
	*list = append(*list, float64(d.Microseconds())/1000)
	s.mu.Unlock()
}

func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return float64(int(s[i]*100)) / 100
}

func runExamLoad(ctx context.Context, cfg loadConfig) (*LoadResult, error) {
	if cfg.Candidates > len(cfg.Demo.Candidates) {
		return nil, fmt.Errorf("the demo has %d candidates, not %d (run examhall demo --candidates %d)", len(cfg.Demo.Candidates), cfg.Candidates, cfg.Candidates)
	}
	st := &stats{}
	sem := make(chan struct{}, max(cfg.LoginConcurrency, 1))
	// Phase 1, the start rush: everyone logs in, connects and starts.
	// Phase 2: everyone answers for Duration, from one moment on.
	start := time.Now()
	var ready, wg sync.WaitGroup
	go1 := make(chan struct{})
	var end time.Time
	for i := range cfg.Candidates {
		ready.Add(1)
		wg.Go(func() {
			entries := cfg.Entries
			if len(entries) == 0 {
				entries = []string{cfg.Demo.URL}
			}
			c := &simCandidate{base: cfg.Demo.URL, entries: entries, entry: i, login: cfg.Demo.Candidates[i], st: st, acked: map[int64]ackedAnswer{}, unacked: map[int64]simAnswer{}}
			c.run(ctx, sem, &ready, go1, &end, cfg.AnswerEvery)
		})
	}
	ready.Wait()
	rush := time.Since(start)
	end = time.Now().Add(cfg.Duration)
	close(go1)
	wg.Wait()
	return &LoadResult{
		Candidates: cfg.Candidates, Connected: int(st.connected.Load()),
		AnswersSent: st.sent.Load(), AnswersAcked: st.acked.Load(), AnswersLost: st.lost.Load(),
		AckP50ms: percentile(st.acks, .5), AckP99ms: percentile(st.acks, .99),
		OutageP50ms: percentile(st.outages, .5), OutageMaxms: percentile(st.outages, 1),
		LoginP50ms: percentile(st.logins, .5), LoginP99ms: percentile(st.logins, .99),
		RushSeconds: float64(rush.Milliseconds()) / 1000,
		Reconnects:  st.reconnect.Load(), Redirects: redirects.Load(), Errors: st.errors.Load(), ErrorSamples: st.samples,
	}, nil
}

type simAnswer struct {
	q      int64
	v      []int
	sentAt time.Time
}

type ackedAnswer struct {
	seq int64
	v   []int
}

// simCandidate is one simulated candidate: it logs in, opens its exam
// socket, starts, answers, and on any disconnection reconnects and resends
// what was not acknowledged, as the exam page does.
type simCandidate struct {
	base    string   // where it logs in
	entries []string // where its sockets open
	entry   int      // the entry it uses now
	login   Login
	st      *stats
	http    *http.Client

	mu      sync.Mutex
	ws      *websocket.Conn
	attempt int64
	qs      []simQuestion
	seq     int64
	unacked map[int64]simAnswer
	acked   map[int64]ackedAnswer // question → highest acknowledged answer
	papers  chan map[string]any
	lostAt  time.Time // when its socket last went, until one resumes
}

type simQuestion struct {
	id      int64
	kind    string
	options []int
}

func (c *simCandidate) run(ctx context.Context, sem chan struct{}, ready *sync.WaitGroup, begin <-chan struct{}, endp *time.Time, every time.Duration) {
	sem <- struct{}{}
	err := c.doLogin(ctx)
	<-sem
	if err == nil {
		err = c.findAttempt(ctx)
	}
	if err == nil {
		for try := 0; try < 5; try++ {
			if err = c.connect(ctx); err == nil {
				c.st.connected.Add(1)
				break
			}
			time.Sleep(time.Second)
		}
	}
	ready.Done()
	if err != nil {
		c.st.err(fmt.Errorf("candidate %s: %w", c.login.Ticket, err))
		return
	}
	<-begin
	end := *endp
	// Spread the candidates' answers over the interval.
	next := time.Now().Add(time.Duration(rand.Int64N(int64(every))))
	ask := time.Now().Add(time.Duration(rand.Int64N(int64(pageTimeEvery))))
	for time.Now().Before(end) && ctx.Err() == nil {
		c.mu.Lock()
		ws := c.ws
		c.mu.Unlock()
		if ws == nil {
			if err := c.connect(ctx); err != nil {
				time.Sleep(200*time.Millisecond + time.Duration(rand.IntN(300))*time.Millisecond)
				continue
			}
		}
		if !time.Now().Before(ask) {
			ask = ask.Add(pageTimeEvery)
			c.send(map[string]any{"type": "time", "id": "t"})
		}
		if d := min(time.Until(next), time.Until(ask)); d > 0 {
			time.Sleep(min(d, time.Until(end)))
			continue
		}
		if !time.Now().Before(next) {
			next = next.Add(every)
			c.answer()
		}
	}
	// Wait a little for the last acknowledgements, then check every
	// acknowledged answer against what the server has.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		n, ws := len(c.unacked), c.ws
		c.mu.Unlock()
		if n == 0 {
			break
		}
		if ws == nil {
			c.connect(ctx)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.checkLost(ctx)
	c.mu.Lock()
	if ws := c.ws; ws != nil {
		c.ws = nil // a goodbye, not a reconnect
		ws.Close()
	}
	c.mu.Unlock()
}

func (c *simCandidate) doLogin(ctx context.Context) error {
	jar, _ := cookiejar.New(nil)
	c.http = &http.Client{Jar: jar, Timeout: 60 * time.Second}
	start := time.Now()
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/api/csrf", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	var tok struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	body, _ := json.Marshal(map[string]string{"username": c.login.Ticket, "password": c.login.Password})
	req, _ = http.NewRequestWithContext(ctx, "POST", c.base+"/api/login", strings.NewReader(string(body)))
	req.Header.Set("X-CSRF-Token", tok.CSRFToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.http.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	c.st.add(&c.st.logins, time.Since(start))
	return nil
}

func (c *simCandidate) findAttempt(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/api/attempts", nil)
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var list struct {
		Attempts []struct {
			ID     int64  `json:"id"`
			Kind   string `json:"kind"`
			Status string `json:"status"`
		} `json:"attempts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return err
	}
	for _, a := range list.Attempts {
		if a.Kind == "formal" && (a.Status == "not_started" || a.Status == "in_progress") {
			c.attempt = a.ID
			return nil
		}
	}
	return fmt.Errorf("candidate %s has no open formal attempt", c.login.Ticket)
}

// connect opens the socket, resumes (starting the attempt if needed) and
// resends every unacknowledged answer.
func (c *simCandidate) connect(ctx context.Context) error {
	entry := c.entries[c.entry%len(c.entries)]
	u := "ws" + strings.TrimPrefix(entry, "http") + fmt.Sprintf("/ws/exam?attempt=%d", c.attempt)
	d := websocket.Dialer{Jar: c.http.Jar, HandshakeTimeout: 10 * time.Second}
	ws, err := dialRoom(ctx, &d, u)
	if err != nil {
		c.entry++ // that node may be gone: the next try goes to the next one
		return err
	}
	papers := make(chan map[string]any, 4)
	done := make(chan struct{})
	go c.read(ws, papers, done)
	ws.WriteJSON(map[string]any{"type": "resume", "id": "r"})
	var p map[string]any
	select {
	case p = <-papers:
	case <-time.After(15 * time.Second):
		ws.Close()
		return errors.New("no paper")
	}
	if p["status"] == "not_started" {
		ws.WriteJSON(map[string]any{"type": "start", "id": "s"})
		select {
		case p = <-papers:
		case <-time.After(15 * time.Second):
			ws.Close()
			return errors.New("no paper after start")
		}
	}
	if p["status"] != "in_progress" {
		ws.Close()
		return fmt.Errorf("attempt %d is %v", c.attempt, p["status"])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-done:
		return errors.New("connection closed during resume")
	default:
	}
	if c.qs == nil {
		for _, raw := range p["questions"].([]any) {
			q := raw.(map[string]any)
			sq := simQuestion{id: int64(q["id"].(float64)), kind: q["kind"].(string)}
			for _, o := range q["options"].([]any) {
				sq.options = append(sq.options, int(o.(map[string]any)["id"].(float64)))
			}
			c.qs = append(c.qs, sq)
		}
	}
	c.seq = max(c.seq, int64(p["last_seq"].(float64)))
	c.ws, c.papers = ws, papers
	if !c.lostAt.IsZero() {
		c.st.add(&c.st.outages, time.Since(c.lostAt))
		c.lostAt = time.Time{}
	}
	for seq, a := range c.unacked {
		ws.WriteJSON(map[string]any{"type": "answer", "seq": seq, "question": a.q, "value": a.v})
	}
	return nil
}

func (c *simCandidate) read(ws *websocket.Conn, papers chan map[string]any, done chan struct{}) {
	defer func() {
		c.mu.Lock()
		if c.ws == ws {
			c.ws = nil
			c.lostAt = time.Now()
			c.st.reconnect.Add(1)
		}
		close(done) // under the lock: connect sees either this or c.ws set
		c.mu.Unlock()
		ws.Close()
	}()
	for {
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			return
		}
		switch m["type"] {
		case "paper":
			select {
			case papers <- m:
			default:
			}
		case "ack":
			seq, ok := m["seq"].(float64)
			if !ok {
				continue
			}
			c.mu.Lock()
			a, ok := c.unacked[int64(seq)]
			if ok {
				delete(c.unacked, int64(seq))
				if prev := c.acked[a.q]; int64(seq) > prev.seq {
					c.acked[a.q] = ackedAnswer{int64(seq), a.v}
				}
			}
			c.mu.Unlock()
			if ok {
				c.st.acked.Add(1)
				c.st.add(&c.st.acks, time.Since(a.sentAt))
			}
		case "error":
			c.st.err(fmt.Errorf("candidate %s: %v %v", c.login.Ticket, m["code"], m["seq"]))
			if seq, ok := m["seq"].(float64); ok {
				c.mu.Lock()
				delete(c.unacked, int64(seq))
				c.mu.Unlock()
			}
		}
	}
}

// pageTimeEvery is how often the exam page asks for the time, its
// heartbeat (frontend/static/exam.js); simulated candidates do the same.
const pageTimeEvery = 3 * time.Second

// send writes one message on the current socket, if there is one.
func (c *simCandidate) send(m map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws == nil {
		return
	}
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteJSON(m); err != nil {
		c.ws.Close()
	}
}

func (c *simCandidate) answer() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws == nil || len(c.qs) == 0 {
		return
	}
	q := c.qs[rand.IntN(len(c.qs))]
	v := []int{q.options[rand.IntN(len(q.options))]}
	if q.kind == "multiple" {
		v = []int{q.options[0], q.options[1]}
		slices.Sort(v)
	}
	c.seq++
	c.unacked[c.seq] = simAnswer{q: q.id, v: v, sentAt: time.Now()}
	c.st.sent.Add(1)
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteJSON(map[string]any{"type": "answer", "seq": c.seq, "question": q.id, "value": v}); err != nil {
		c.ws.Close() // the reader notices, and the loop reconnects and resends
	}
}

// checkLost resumes once more and counts acknowledged answers the server
// does not have: for each question, the server's answer must be the one of
// the highest acknowledged sequence number, or a newer one.
func (c *simCandidate) checkLost(ctx context.Context) {
	var p map[string]any
	for try := 0; try < 3 && p == nil; try++ {
		c.mu.Lock()
		ws, papers := c.ws, c.papers
		c.mu.Unlock()
		if ws == nil {
			if err := c.connect(ctx); err != nil {
				time.Sleep(time.Second)
				continue
			}
			c.mu.Lock()
			ws, papers = c.ws, c.papers
			c.mu.Unlock()
			if ws == nil {
				continue
			}
		}
		ws.WriteJSON(map[string]any{"type": "resume", "id": "final"})
		select {
		case p = <-papers:
		case <-time.After(20 * time.Second):
			ws.Close()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p == nil {
		c.st.err(fmt.Errorf("final resume %s failed; counting its %d acknowledged answers as unverified", c.login.Ticket, len(c.acked)))
		c.st.lost.Add(int64(len(c.acked)))
		return
	}
	server := map[int64]int64{}
	for _, raw := range p["answers"].([]any) {
		a := raw.(map[string]any)
		server[int64(a["q"].(float64))] = int64(a["seq"].(float64))
	}
	for q, a := range c.acked {
		if server[q] < a.seq {
			c.st.lost.Add(1)
		}
	}
}
