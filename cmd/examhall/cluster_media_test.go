package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// publisher is a candidate publishing both cameras through a cluster as
// the pages do: on the loss of its sockets it reconnects through the
// entries and publishes again on new peer connections.
type publisher struct {
	c        *simCandidate
	entries  []string
	api      *webrtc.API
	frames   [][]byte
	pages    [][]byte
	link     string // the phone's pairing link, used once
	key      string // the phone's device key after pairing
	sent     atomic.Int64
	sessions atomic.Int64 // times both cameras were published
}

func (p *publisher) run(ctx context.Context) {
	for try := 0; ctx.Err() == nil; try++ {
		if err := p.publishOnce(ctx, p.entries[try%len(p.entries)]); err != nil && ctx.Err() == nil {
			time.Sleep(300 * time.Millisecond)
		}
	}
}

// publishOnce opens the exam socket at entry (it follows the redirect),
// publishes the PC and then the phone, and sends until either socket ends.
func (p *publisher) publishOnce(ctx context.Context, entry string) error {
	ws, err := dialRoom(ctx, &websocket.Dialer{Jar: p.c.http.Jar}, "ws"+strings.TrimPrefix(entry, "http")+fmt.Sprintf("/ws/exam?attempt=%d", p.c.attempt))
	if err != nil {
		return err
	}
	defer ws.Close()
	ws.WriteJSON(map[string]any{"type": "start", "id": "s"})
	if p.link == "" {
		ws.WriteJSON(map[string]any{"type": "pair", "id": "p"})
	}
	for p.link == "" {
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			return err
		}
		if m["type"] == "pair" {
			p.link, _ = m["url"].(string)
		}
	}
	pc, err := publishOver(ctx, p.api, ws, true)
	if err != nil {
		return err
	}
	defer pc.pc.Close()
	phoneURL := "ws" + strings.TrimPrefix(entry, "http") + "/ws/phone?key=" + url.QueryEscape(p.key)
	if p.key == "" {
		phoneURL = "ws" + strings.TrimPrefix(strings.Replace(p.link, "/phone?", "/ws/phone?", 1), "http")
	}
	pws, err := dialRoom(ctx, websocket.DefaultDialer, phoneURL)
	if err != nil {
		return err
	}
	defer pws.Close()
	if p.key == "" {
		var m struct {
			Type      string
			DeviceKey string `json:"device_key"`
		}
		if err := pws.ReadJSON(&m); err != nil || m.Type != "paired" {
			return fmt.Errorf("phone: %v %+v", err, m)
		}
		p.key = m.DeviceKey
	}
	phone, err := publishOver(ctx, p.api, pws, false)
	if err != nil {
		return err
	}
	defer phone.pc.Close()
	p.sessions.Add(1)
	for _, d := range []*mediaDevice{pc, phone} {
		go func() {
			for ctx.Err() == nil {
				select {
				case <-pc.gone:
					return
				case <-phone.gone:
					return
				default:
				}
				d.send(time.Now().Add(500*time.Millisecond), p.frames, p.pages, &p.sent)
			}
		}()
	}
	select {
	case <-ctx.Done():
	case <-pc.gone:
	case <-phone.gone:
	}
	return nil
}

// The owner of a room where 12 candidates publish both cameras (recorded
// in 1 s segments to an S3 server) is killed with SIGKILL: the devices
// publish again on the new owner, every segment closed before the kill
// and after the failover is in object storage, decodes, and is listed on
// the review timeline asked on a node that did not record it.
func TestClusterKillKeepsRecordings(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three examhall processes and 24 WebRTC publishers")
	}
	if _, err := exec.LookPath("ffprobe"); err != nil {
		t.Skip("ffprobe is not installed (apt-get install ffmpeg; .ci/run does it)")
	}
	s3 := storetest.NewS3(t)
	t.Setenv("EXAMHALL_BLOB_CREDENTIALS", s3.Access+":"+s3.Secret)
	nodes, demo, pg, rd := startCluster(t, 3, 30, 6, "--blob-store", s3.URL("examhall"), "--recording-segment", "1s", "--face-check=false")
	db, err := store.Open(context.Background(), pg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var entries []string
	for _, n := range nodes {
		entries = append(entries, n.url)
	}
	frames, err := readIVF("../../media/testdata/camera.ivf")
	if err != nil {
		t.Fatal(err)
	}
	pages, err := readOgg("../../media/testdata/mic.ogg")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var pubs []*publisher
	var wg sync.WaitGroup
	api := newPionAPI()
	for i := range 12 { // all in the first room
		c := &simCandidate{base: entries[0], login: demo.Candidates[i], st: &stats{}}
		if err := c.doLogin(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.findAttempt(ctx); err != nil {
			t.Fatal(err)
		}
		p := &publisher{c: c, entries: slices.Concat(entries[i%3:], entries[:i%3]), api: api, frames: frames, pages: pages}
		pubs = append(pubs, p)
		wg.Go(func() { p.run(ctx) })
	}
	attempts := make([]int64, len(pubs))
	for i, p := range pubs {
		attempts[i] = p.c.attempt
	}
	// uploaded counts, per attempt and device, the segments in object
	// storage recorded on nodes other than (or on) a node.
	uploaded := func(node string, other bool) map[string]int {
		var recs []store.Recording
		db.Where("attempt_id IN ? AND blob_key <> ''", attempts).Find(&recs)
		out := map[string]int{}
		for _, r := range recs {
			if (r.Node == node) != other {
				out[fmt.Sprint(r.AttemptID, r.Device)]++
			}
		}
		return out
	}
	waitAll := func(what, node string, other bool, within time.Duration) {
		t.Helper()
		for end := time.Now().Add(within); ; time.Sleep(250 * time.Millisecond) {
			if got := uploaded(node, other); len(got) == 2*len(pubs) {
				return
			} else if time.Now().After(end) {
				t.Fatalf("%s: %d of %d cameras have a segment in object storage", what, len(got), 2*len(pubs))
			}
		}
	}
	var room int64
	db.Table("seats").Select("room_id").Where("candidate_id = (SELECT candidate_id FROM attempts WHERE id = ?)", attempts[0]).Scan(&room)
	flags := watchConsole(ctx, t, entries, demo.Chief, room)
	waitAll("before the kill", "", true, 60*time.Second)
	victim := nodes[slices.IndexFunc(nodes, func(n *clusterNode) bool { return n.id == owners(t, db, rd)[room].Node })]
	killedAt := time.Now()
	victim.cmd.Process.Signal(syscall.SIGKILL)
	victim.cmd.Wait()
	waitAll("after the failover", victim.id, true, 60*time.Second)

	// A flag raised after the failover reaches the room's console, which
	// reconnected to the new owner too.
	c := &simCandidate{base: entries[slices.IndexFunc(nodes, func(n *clusterNode) bool { return n != victim })], login: demo.Candidates[12], st: &stats{}}
	if err := c.doLogin(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.findAttempt(ctx); err != nil {
		t.Fatal(err)
	}
	cws, err := dialRoom(ctx, &websocket.Dialer{Jar: c.http.Jar}, "ws"+strings.TrimPrefix(c.base, "http")+fmt.Sprintf("/ws/exam?attempt=%d", c.attempt))
	if err != nil {
		t.Fatal(err)
	}
	defer cws.Close()
	cws.WriteJSON(map[string]any{"type": "start", "id": "s"})
	cws.WriteJSON(map[string]any{"type": "signal", "id": 1, "kind": "paste", "phase": "instant"})
	for deadline := time.After(15 * time.Second); ; {
		select {
		case f := <-flags:
			if f.AttemptID != c.attempt || f.Kind != "paste" {
				continue
			}
		case <-deadline:
			t.Fatal("the flag raised after the failover did not reach the room's console in 15 s")
		}
		break
	}
	stop()
	wg.Wait()
	time.Sleep(2 * time.Second) // the last segments close and go up

	// Every segment in object storage decodes, fetched through a live node
	// that did not record it, and the review timeline there lists it.
	admin := &simCandidate{base: "", login: Login{Ticket: demo.Admin.Username, Password: demo.Admin.Password}, st: &stats{}}
	var recs []store.Recording
	db.Where("attempt_id IN ? AND blob_key <> ''", attempts).Order("started_at").Find(&recs)
	lost := map[string]time.Duration{}
	for i, r := range recs {
		reader := nodes[slices.IndexFunc(nodes, func(n *clusterNode) bool { return n.id != victim.id && n.id != r.Node })]
		if admin.base != reader.url {
			admin.base = reader.url
			if err := admin.doLogin(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if i%4 == 0 || r.Node == victim.id { // every segment of the dead node, a sample of the others
			resp, err := admin.http.Get(fmt.Sprintf("%s/api/recordings/%d", reader.url, r.ID))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "seg.webm")
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			os.WriteFile(path, b, 0o600)
			if out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).CombinedOutput(); resp.StatusCode != 200 || err != nil {
				t.Fatalf("segment %d of node %s, read on %s: %d, %v %s", r.ID, r.Node, reader.id, resp.StatusCode, err, out)
			}
		}
	}
	for _, a := range attempts {
		resp, err := admin.http.Get(fmt.Sprintf("%s/api/review/attempts/%d", admin.base, a))
		if err != nil {
			t.Fatal(err)
		}
		var v struct {
			Timeline struct {
				Segments []struct {
					RecordingID int64  `json:"recording_id"`
					Device      string `json:"device"`
				} `json:"segments"`
			} `json:"timeline"`
		}
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		listed := map[int64]bool{}
		for _, sg := range v.Timeline.Segments {
			listed[sg.RecordingID] = true
		}
		var before, after time.Time
		for _, r := range recs {
			if r.AttemptID != a {
				continue
			}
			if !listed[r.ID] {
				t.Errorf("attempt %d: segment %d (node %s) is in object storage but not on the timeline", a, r.ID, r.Node)
			}
			// The recorded time lost: from the dead node's last segment in
			// storage to the new owner's first, per camera.
			if r.Device == "pc" && r.Node == victim.id && r.EndedAt != nil && r.EndedAt.After(before) {
				before = *r.EndedAt
			}
			if r.Device == "pc" && r.Node != victim.id && r.StartedAt.After(killedAt) && (after.IsZero() || r.StartedAt.Before(after)) {
				after = r.StartedAt
			}
		}
		lost[fmt.Sprint(a)] = after.Sub(before)
	}
	var gaps []time.Duration
	for _, g := range lost {
		gaps = append(gaps, g)
	}
	slices.Sort(gaps)
	t.Logf("recorded seconds lost per PC camera around the kill of %s: median %v, max %v (segments 1 s, lease 6 s)", victim.id, gaps[len(gaps)/2], gaps[len(gaps)-1])
	if gaps[len(gaps)-1] > 20*time.Second || gaps[0] <= 0 {
		t.Fatalf("recording gaps %v: want each camera recorded again on the new owner within 20 s", gaps)
	}
	var sessions int64
	for _, p := range pubs {
		sessions += p.sessions.Load()
	}
	if sessions < int64(2*len(pubs)) {
		t.Fatalf("%d publish sessions for %d candidates: every candidate should have published again after the failover", sessions, len(pubs))
	}
}

type consoleFlag struct {
	AttemptID int64  `json:"attempt_id"`
	Kind      string `json:"kind"`
}

// watchConsole keeps a room's console open through the entries, as the
// console page does (reconnecting, following redirects), and passes on
// the new flags it shows.
func watchConsole(ctx context.Context, t *testing.T, entries []string, staff Login, room int64) <-chan consoleFlag {
	hc, err := loginAs(ctx, entries[0], staff.Username, staff.Password)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan consoleFlag, 100)
	go func() {
		for try := 0; ctx.Err() == nil; try++ {
			u := "ws" + strings.TrimPrefix(entries[try%len(entries)], "http") + fmt.Sprintf("/ws/console?room=%d", room)
			ws, err := dialRoom(ctx, &websocket.Dialer{Jar: hc.Jar}, u)
			if err != nil {
				time.Sleep(300 * time.Millisecond)
				continue
			}
			go func() { <-ctx.Done(); ws.Close() }()
			for {
				var m struct {
					Type string      `json:"type"`
					New  bool        `json:"new"`
					Flag consoleFlag `json:"flag"`
				}
				if ws.ReadJSON(&m) != nil {
					break
				}
				if m.Type == "flag" && m.New {
					select {
					case out <- m.Flag:
					default:
					}
				}
			}
			ws.Close()
		}
	}()
	return out
}
