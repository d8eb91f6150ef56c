package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

// The server is killed with SIGKILL while 50 candidates answer, and started
// again: every acknowledged answer is there, no deadline moved, and every
// attempt's log still verifies.
func TestKillMidExamLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv, _ := startBinary(t, "demo", "--addr", addr, "--data-dir", data, "--candidates", "50", "--log-level", "warn")
	var demo DemoFile
	b, _ := os.ReadFile(filepath.Join(data, "demo.json"))
	if err := json.Unmarshal(b, &demo); err != nil {
		t.Fatal(err)
	}

	results := make(chan *LoadResult, 1)
	go func() {
		r, err := runExamLoad(context.Background(), loadConfig{Demo: &demo, Candidates: 50, Duration: 12 * time.Second, AnswerEvery: 150 * time.Millisecond, LoginConcurrency: 50})
		if err != nil {
			t.Error(err)
		}
		results <- r
	}()
	// Kill once every candidate has started (their logins take a while on
	// a busy machine) and answers are flowing.
	for wait := time.Now().Add(30 * time.Second); len(attemptDeadlines(t, data)) < 50 && time.Now().Before(wait); {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	srv.Process.Signal(syscall.SIGKILL)
	srv.Wait()
	deadlines := attemptDeadlines(t, data)
	if len(deadlines) != 50 {
		t.Fatalf("%d attempts in progress at the kill, want 50", len(deadlines))
	}
	time.Sleep(500 * time.Millisecond) // clients see the server gone and retry
	srv, _ = startBinary(t, "serve", "--addr", addr, "--data-dir", data)

	r := <-results
	t.Logf("load across the kill: %+v", r)
	if r.AnswersLost != 0 || r.AnswersAcked == 0 || r.Reconnects == 0 || r.Connected != 50 {
		t.Fatalf("lost %d of %d acknowledged answers (%d reconnects, %d connected)", r.AnswersLost, r.AnswersAcked, r.Reconnects, r.Connected)
	}
	srv.Process.Signal(syscall.SIGTERM)
	srv.Wait()
	after := attemptDeadlines(t, data)
	for id, d := range deadlines {
		if !after[id].Equal(d) {
			t.Errorf("attempt %d: deadline moved from %v to %v", id, d, after[id])
		}
	}
	db, err := store.Open(context.Background(), "", data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for id := range deadlines {
		rep, err := exam.New(exam.Config{DB: db}).Verify(context.Background(), id)
		if err != nil || !rep.OK() {
			t.Fatalf("attempt %d after the crash: %+v %v", id, rep, err)
		}
	}
}

func attemptDeadlines(t *testing.T, data string) map[int64]time.Time {
	t.Helper()
	db, err := store.Open(context.Background(), "", data)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var as []store.Attempt
	db.Where("status = ?", "in_progress").Find(&as)
	out := map[int64]time.Time{}
	for _, a := range as {
		out[a.ID] = *a.Deadline
	}
	return out
}
