package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// clusterNode is one examhall process of a test's cluster.
type clusterNode struct {
	id, url string
	cmd     *exec.Cmd
}

// startCluster starts n examhall processes on one PostgreSQL and one Redis,
// the first seeding a demo of the given size; it returns them, the demo and
// the database and Redis URLs.
func startCluster(t *testing.T, n, candidates, redisDB int, extra ...string) ([]*clusterNode, *DemoFile, string, string) {
	t.Helper()
	pg := storetest.PostgresURL(t)
	rd := storetest.RedisURL(t, redisDB)
	dir := t.TempDir()
	var nodes []*clusterNode
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, id), "--database", pg, "--redis", rd,
			"--node-id", id, "--ice-loopback"}
		args = append(args, extra...)
		if i == 0 {
			args = append([]string{"demo"}, append(args[1:], "--candidates", fmt.Sprint(candidates))...)
		}
		cmd, url := startBinary(t, args...)
		nodes = append(nodes, &clusterNode{id: id, url: url, cmd: cmd})
	}
	var demo DemoFile
	var err error
	for wait := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var b []byte
		if b, err = os.ReadFile(filepath.Join(dir, "n1", "demo.json")); err == nil {
			if err = json.Unmarshal(b, &demo); err == nil {
				break
			}
		}
		if time.Now().After(wait) {
			t.Fatalf("demo.json: %v", err)
		}
	}
	return nodes, &demo, pg, rd
}

// owners maps each room of the database to the node holding its lease.
func owners(t *testing.T, db *store.DB, rd string) map[int64]store.Lease {
	t.Helper()
	r, err := store.OpenRedis(context.Background(), rd, redisPrefix)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rooms []int64
	db.Model(&store.Room{}).Pluck("id", &rooms)
	out := map[int64]store.Lease{}
	for _, id := range rooms {
		if l, ok, err := r.Owner(context.Background(), store.RoomKey(id)); err == nil && ok {
			out[id] = l
		}
	}
	return out
}

type clock struct {
	deadline time.Time
	credited int
}

func attemptClocks(t *testing.T, db *store.DB) map[int64]clock {
	t.Helper()
	var as []store.Attempt
	if err := db.Where("status = ?", exam.StatusInProgress).Find(&as).Error; err != nil {
		t.Fatal(err)
	}
	out := map[int64]clock{}
	for _, a := range as {
		out[a.ID] = clock{*a.Deadline, a.CreditedSeconds}
	}
	return out
}

// An owner paused (SIGSTOP) past its lease loses its room to another node;
// continued, it handles nothing more of the room: an answer that waited in
// its socket is neither stored nor acknowledged, and the socket is closed
// with "moved", so the page goes to the new owner.
func TestClusterPausedOwnerWritesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two examhall processes")
	}
	nodes, demo, pg, rd := startCluster(t, 2, 2, 4)
	db, err := store.Open(context.Background(), pg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	join := func(i int, entry string) (*simCandidate, *websocket.Conn, map[string]any) {
		t.Helper()
		c := &simCandidate{base: entry, login: demo.Candidates[i], st: &stats{}}
		if err := c.doLogin(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.findAttempt(ctx); err != nil {
			t.Fatal(err)
		}
		ws, err := dialRoom(ctx, &websocket.Dialer{Jar: c.http.Jar}, "ws"+entry[len("http"):]+fmt.Sprintf("/ws/exam?attempt=%d", c.attempt))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		ws.WriteJSON(map[string]any{"type": "start", "id": "s"})
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				t.Fatal(err)
			}
			if m["type"] == "paper" {
				return c, ws, m
			}
		}
	}
	a, aws, paper := join(0, nodes[0].url)
	lease := owners(t, db, rd)
	if len(lease) != 1 {
		t.Fatalf("leases %v, want one room", lease)
	}
	var room int64
	for id, l := range lease {
		room = id
		if l.Node != "n1" {
			t.Fatalf("the room went to %s, want n1 (both idle, n1 first by name)", l.Node)
		}
	}
	nodes[0].cmd.Process.Signal(syscall.SIGSTOP)
	defer nodes[0].cmd.Process.Signal(syscall.SIGCONT)
	time.Sleep(store.LeaseTTL + 2*time.Second)
	join(1, nodes[1].url) // n2 takes the room: n1 is silent
	if l := owners(t, db, rd)[room]; l.Node != "n2" || l.Fence <= lease[room].Fence {
		t.Fatalf("after the pause the room is %+v, want n2's with a fence above %d", l, lease[room].Fence)
	}
	q := paper["questions"].([]any)[0].(map[string]any)["id"]
	aws.WriteJSON(map[string]any{"type": "answer", "seq": 7, "question": q, "value": []int{1}})
	nodes[0].cmd.Process.Signal(syscall.SIGCONT)
	aws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var m map[string]any
		if err := aws.ReadJSON(&m); err != nil {
			t.Fatalf("the paused owner's socket ended without saying the room moved: %v", err)
		}
		if m["type"] == "ack" && fmt.Sprint(m["seq"]) == "7" {
			t.Fatal("the paused owner acknowledged an answer after losing the room")
		}
		if m["type"] == "closed" {
			if m["code"] != "moved" {
				t.Fatalf("closed with %v, want moved", m)
			}
			break
		}
	}
	var n int64
	db.Model(&store.Answer{}).Where("attempt_id = ? AND seq = 7", a.attempt).Count(&n)
	if n != 0 {
		t.Fatal("the paused owner stored an answer after losing the room")
	}
	// The page reconnects through n1 and is sent to n2.
	ws, err := dialRoom(ctx, &websocket.Dialer{Jar: a.http.Jar}, "ws"+nodes[0].url[len("http"):]+fmt.Sprintf("/ws/exam?attempt=%d", a.attempt))
	if err != nil {
		t.Fatalf("reconnect after the pause: %v", err)
	}
	ws.Close()
}

// A node told to drain (examhall drain) while its rooms' candidates answer
// moves every room to the other nodes and exits; no acknowledged answer is
// lost and the pages are back within a few seconds.
func TestClusterDrainMovesRoomsWithNothingLost(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three examhall processes")
	}
	const candidates = 45
	nodes, demo, pg, rd := startCluster(t, 3, candidates, 5)
	db, err := store.Open(context.Background(), pg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var entries []string
	for _, n := range nodes {
		entries = append(entries, n.url)
	}
	results := make(chan *LoadResult, 1)
	go func() {
		r, err := runExamLoad(context.Background(), loadConfig{Demo: demo, Candidates: candidates, Duration: 12 * time.Second,
			AnswerEvery: 300 * time.Millisecond, LoginConcurrency: 20, Entries: entries})
		if err != nil {
			t.Error(err)
		}
		results <- r
	}()
	for wait := time.Now().Add(60 * time.Second); len(attemptClocks(t, db)) < candidates && time.Now().Before(wait); {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	held := map[string]int{}
	for _, l := range owners(t, db, rd) {
		held[l.Node]++
	}
	victim := slices.MaxFunc(nodes, func(a, b *clusterNode) int { return held[a.id] - held[b.id] })
	var out strings.Builder
	if err := runCommand(context.Background(), []string{"drain", "--node-id", victim.id, "--redis", rd}, &out, io.Discard); err != nil {
		t.Fatalf("examhall drain: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- victim.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the drained node exited with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the drained node did not exit within 15 s")
	}
	r := <-results
	t.Logf("load across the drain of %s (%d rooms): %+v", victim.id, held[victim.id], r)
	if r.Connected != candidates || r.AnswersAcked == 0 || r.AnswersLost != 0 || r.Reconnects == 0 {
		t.Fatalf("%d of %d connected, %d reconnects; lost %d of %d acknowledged answers", r.Connected, candidates, r.Reconnects, r.AnswersLost, r.AnswersAcked)
	}
	for room, l := range owners(t, db, rd) {
		if l.Node == victim.id {
			t.Errorf("room %d is still the drained node's", room)
		}
	}
}
