package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// ProctorLoadResult is what `examhall loadgen proctor` prints.
type ProctorLoadResult struct {
	Candidates    int      `json:"candidates"`
	Consoles      int      `json:"consoles"`
	SignalsSent   int64    `json:"signals_sent"`
	FlagsReceived int64    `json:"flags_received"`
	FlagP50ms     float64  `json:"flag_p50_ms"`
	FlagP99ms     float64  `json:"flag_p99_ms"`
	Errors        int64    `json:"errors"`
	ErrorSamples  []string `json:"error_samples,omitempty"`
}

// signalKinds are instant page signals; a candidate cycles through them so
// each one raises a new flag rather than merging into the last.
var signalKinds = []string{"paste", "copy", "cut", "context_menu"}

func loadgenProctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("examhall loadgen proctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	demoPath := fs.String("demo", "data/demo.json", "the demo.json written by examhall demo")
	consoles := fs.Int("invigilators", 30, "how many invigilators open their console")
	dur := fs.Duration("duration", 30*time.Second, "how long candidates send signals")
	every := fs.Duration("signal-every", 2*time.Second, "each candidate sends a page signal this often")
	entry := fs.String("url", "", "the server or cluster entry to drive (default: the demo's URL); sockets follow redirects to their room's node")
	if err := fs.Parse(args); err != nil {
		return err
	}
	demo, err := loadDemo(*demoPath)
	if err != nil {
		return err
	}
	if err := demo.useEntry(*entry); err != nil {
		return err
	}
	res, err := runProctorLoad(ctx, demo, *consoles, *dur, *every)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(res)
}

// runProctorLoad opens the consoles of the first n invigilators, connects
// every candidate of their rooms, and has each candidate send a page signal
// every interval; it measures, at the console, how long each signal took to
// come back as a flag.
func runProctorLoad(ctx context.Context, demo *DemoFile, n int, dur, every time.Duration) (*ProctorLoadResult, error) {
	n = min(n, len(demo.Invigilators))
	st := &stats{}
	res := &ProctorLoadResult{Consoles: n}
	rooms := map[string]bool{}
	var consoles []*http.Client
	for _, inv := range demo.Invigilators[:n] {
		c, err := loginAs(ctx, demo.URL, inv.Username, inv.Password)
		if err != nil {
			return nil, fmt.Errorf("invigilator %s: %w", inv.Username, err)
		}
		consoles = append(consoles, c)
		rooms[inv.Room] = true
	}
	// Candidates of those rooms: connect and start.
	var cands []*simCandidate
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, l := range demo.Candidates {
		if !rooms[l.Room] {
			continue
		}
		wg.Go(func() {
			c := &simCandidate{base: demo.URL, login: l, st: st, acked: map[int64]ackedAnswer{}, unacked: map[int64]simAnswer{}}
			sem <- struct{}{}
			err := c.doLogin(ctx)
			<-sem
			if err == nil {
				err = c.findAttempt(ctx)
			}
			if err == nil {
				err = c.connect(ctx)
			}
			if err != nil {
				st.err(err)
				return
			}
			mu.Lock()
			cands = append(cands, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Candidates = len(cands)

	// sent[attempt][kind] is when the last signal of that kind left.
	var sentMu sync.Mutex
	sent := map[int64]map[string]time.Time{}
	var flags atomic.Int64
	var lat []float64
	var latMu sync.Mutex
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cwg sync.WaitGroup
	for i, hc := range consoles {
		room, err := roomOf(ctx, demo.URL, hc, demo.Invigilators[i].Room)
		if err != nil {
			st.err(err)
			continue
		}
		u := "ws" + strings.TrimPrefix(demo.URL, "http") + fmt.Sprintf("/ws/console?room=%d", room)
		ws, err := dialRoom(ctx, &websocket.Dialer{Jar: hc.Jar}, u)
		if err != nil {
			st.err(err)
			continue
		}
		cwg.Go(func() {
			go func() { <-cctx.Done(); ws.Close() }()
			for {
				var m struct {
					Type string `json:"type"`
					New  bool   `json:"new"`
					Flag struct {
						AttemptID int64  `json:"attempt_id"`
						Kind      string `json:"kind"`
					} `json:"flag"`
				}
				if err := ws.ReadJSON(&m); err != nil {
					return
				}
				if m.Type != "flag" || !m.New {
					continue
				}
				sentMu.Lock()
				at, ok := sent[m.Flag.AttemptID][m.Flag.Kind]
				sentMu.Unlock()
				if ok {
					flags.Add(1)
					latMu.Lock()
					lat = append(lat, float64(time.Since(at).Microseconds())/1000)
					latMu.Unlock()
				}
			}
		})
	}
	time.Sleep(time.Second) // consoles subscribed
	var sigs atomic.Int64
	end := time.Now().Add(dur)
	var swg sync.WaitGroup
	for _, c := range cands {
		swg.Go(func() {
			time.Sleep(time.Duration(rand.Int64N(int64(every))))
			for k := 0; time.Now().Before(end); k++ {
				kind := signalKinds[k%len(signalKinds)]
				c.mu.Lock()
				ws := c.ws
				if ws != nil {
					sentMu.Lock()
					if sent[c.attempt] == nil {
						sent[c.attempt] = map[string]time.Time{}
					}
					sent[c.attempt][kind] = time.Now()
					sentMu.Unlock()
					if ws.WriteJSON(map[string]any{"type": "signal", "id": k, "kind": kind, "phase": "instant"}) == nil {
						sigs.Add(1)
					}
				}
				c.mu.Unlock()
				time.Sleep(every)
			}
		})
	}
	swg.Wait()
	time.Sleep(2 * time.Second) // the last flags arrive
	cancel()
	cwg.Wait()
	for _, c := range cands {
		c.mu.Lock()
		if c.ws != nil {
			c.ws.Close()
		}
		c.mu.Unlock()
	}
	res.SignalsSent, res.FlagsReceived = sigs.Load(), flags.Load()
	res.FlagP50ms, res.FlagP99ms = percentile(lat, .5), percentile(lat, .99)
	res.Errors, res.ErrorSamples = st.errors.Load(), st.samples
	return res, nil
}

func loginAs(ctx context.Context, base, user, pw string) (*http.Client, error) {
	c := &simCandidate{base: base, login: Login{Ticket: user, Password: pw}, st: &stats{}}
	if err := c.doLogin(ctx); err != nil {
		return nil, err
	}
	return c.http, nil
}

// roomOf finds the id of the invigilator's room by its code's name.
func roomOf(ctx context.Context, base string, hc *http.Client, code string) (int64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/proctor/rooms", nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Rooms []struct {
			RoomID int64 `json:"room_id"`
		} `json:"rooms"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Rooms) == 0 {
		return 0, fmt.Errorf("no room for the invigilator of %s", code)
	}
	return r.Rooms[0].RoomID, nil
}
