package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// Every socket of a room (the candidate's exam page, their phone, an
// invigilator's console) that reaches a node which does not own the room
// is sent to the owner with a redirect message, and the owner greets it
// with hello. A drained owner closes the room's sockets with "moved", and
// they reconnect to the other node with nothing lost.
func TestEverySocketEndsAtItsRoomsOwner(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	other := e.secondNode()
	hc := e.login(e.cands[0])
	// Both nodes are idle, so n1 (e) takes the room; n2 sends devices on.
	first := func(hc *http.Client, path string) map[string]any {
		t.Helper()
		ws, _, err := wsDialer(hc).Dial("ws"+strings.TrimPrefix(other.srv.URL, "http")+path, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		defer ws.Close()
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return m
	}
	examPath := fmt.Sprintf("/ws/exam?attempt=%d", e.cands[0].attempt)
	m := first(hc, examPath)
	if want := "ws" + strings.TrimPrefix(e.srv.URL, "http") + examPath; m["type"] != "redirect" || m["url"] != want {
		t.Fatalf("the exam socket on a node that does not own the room got %v, want a redirect to %s", m, want)
	}
	if l, ok, _ := e.leases.Owner(context.Background(), store.RoomKey(e.room)); !ok || l.Node != "n1" {
		t.Fatalf("room lease = %+v, %v; want n1's", l, ok)
	}
	pc, _, err := other.open(hc, examPath)
	if err != nil {
		t.Fatal(err)
	}
	paper := pc.start()
	q := questions(paper)[0]["id"]
	pc.send(map[string]any{"type": "answer", "seq": 1, "question": q, "value": []int{1}})
	pc.await("ack", is("ack", "seq", 1))

	// The phone: its pairing link is used up on the owner only.
	pc.send(map[string]any{"type": "pair", "id": "p"})
	link := pc.await("pair", is("pair", "id", "p"))["url"].(string)
	phonePath := "/ws/phone?" + strings.SplitN(link, "?", 2)[1]
	if m := first(&http.Client{}, phonePath); m["type"] != "redirect" {
		t.Fatalf("the phone on a node that does not own the room got %v, want a redirect", m)
	}
	phone, _, err := other.open(&http.Client{}, phonePath)
	if err != nil {
		t.Fatalf("phone after the redirect: %v", err)
	}
	phone.await("paired on the owner", is("paired"))

	// The console of the room's invigilator.
	consolePath := fmt.Sprintf("/ws/console?room=%d", e.room)
	staff := e.login(e.invA)
	if m := first(staff, consolePath); m["type"] != "redirect" {
		t.Fatalf("the console on a node that does not own the room got %v, want a redirect", m)
	}
	if _, _, err := other.open(staff, consolePath); err != nil {
		t.Fatalf("console after the redirect: %v", err)
	}

	// The owner drains: its sockets are told the room moved, and the
	// next connection, even to the drained node, ends on n2.
	e.web.Node().Drain(context.Background())
	if m := pc.await("moved", is("closed")); m["code"] != "moved" {
		t.Fatalf("the drained owner closed the exam socket with %v, want code moved", m)
	}
	phone.await("phone moved", is("closed", "code", "moved"))
	resp, err := http.Get(e.srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"node":"draining"`) {
		t.Fatalf("readyz of a draining node = %d %s, want 503 naming the drain", resp.StatusCode, body)
	}
	pc2, _, err := e.open(hc, examPath)
	if err != nil {
		t.Fatal(err)
	}
	if l, _, _ := e.leases.Owner(context.Background(), store.RoomKey(e.room)); l.Node != "n2" {
		t.Fatalf("after the drain the room is %+v's, want n2's", l)
	}
	pc2.send(map[string]any{"type": "resume", "id": "r"})
	got := pc2.await("paper on n2", is("paper", "id", "r"))
	if answers := fmt.Sprint(got["answers"]); !strings.Contains(answers, "seq:1") {
		t.Fatalf("the answer acknowledged before the drain is not in the paper after it: %s", answers)
	}
}

// With object storage, what a page or an admin uploads to one node (a
// question image, an enrolment still) is read on another, whose disk never
// had it.
func TestUploadsReadOnAnotherNode(t *testing.T) {
	e := newS3Env(t)
	other := e.secondNode()

	admin := e.login(e.admin)
	img := jpegOf(t, 320, 240)
	code, out := call(t, e, admin, "POST", "/api/admin/images", img)
	var up struct{ URL string }
	if json.Unmarshal(out, &up); code != 201 || up.URL == "" {
		t.Fatalf("image upload: %d %s", code, out)
	}
	hc := e.login(e.cands[0])
	if code, got := call(t, other, hc, "GET", up.URL, nil); code != 200 || !bytes.Equal(got, img) {
		t.Fatalf("question image on the other node: %d, %d bytes (want %d)", code, len(got), len(img))
	}
	code, out = call(t, e, hc, "POST", fmt.Sprintf("/api/attempts/%d/stills?kind=enrol", e.cands[0].attempt), img)
	if code != 201 {
		t.Fatalf("enrolment still: %d %s", code, out)
	}
	if code, got := call(t, other, hc, "GET", fmt.Sprintf("/api/attempts/%d/enrol", e.cands[0].attempt), nil); code != 200 || !bytes.Equal(got, img) {
		t.Fatalf("enrolment still on the other node: %d, %d bytes", code, len(got))
	}
}

// The device check's test connection lives on the node that answered its
// offer; its result asked of another node is redirected there.
func TestDeviceCheckResultFollowsItsNode(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	other := e.secondNode()
	hc := e.login(e.cands[0])
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(other.srv.URL + "/api/device-check/webrtc/n1.abc")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if want := e.srv.URL + "/api/device-check/webrtc/n1.abc"; resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != want {
		t.Fatalf("result asked of n2: %d %q, want 307 to %s", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if code, _ := call(t, other, hc, "GET", "/api/device-check/webrtc/n9.abc", nil); code != http.StatusNotFound {
		t.Fatalf("a probe of no live node: %d, want 404", code)
	}
}

// An admin sees the cluster's live nodes and, per node, the recording
// segments still waiting on its disk for object storage.
func TestAdminSeesTheCluster(t *testing.T) {
	e := newS3Env(t)
	other := e.secondNode()
	end := e.clock.now()
	waiting := &store.Recording{AttemptID: e.cands[0].attempt, Device: "phone", Connection: "c9", Path: "/nowhere.webm",
		StartedAt: end.Add(-time.Minute), EndedAt: &end, State: "closed", Node: "n2"}
	if err := e.db.Create(waiting).Error; err != nil {
		t.Fatal(err)
	}
	code, out := call(t, other, e.login(e.admin), "GET", "/api/admin/cluster", nil)
	var got struct {
		Node          string
		Nodes         []store.NodeInfo
		ObjectStorage bool `json:"object_storage"`
		Backlog       map[string]int
	}
	if err := json.Unmarshal(out, &got); err != nil || code != 200 {
		t.Fatalf("cluster: %d %s", code, out)
	}
	var ids []string
	for _, n := range got.Nodes {
		ids = append(ids, n.ID)
	}
	if got.Node != "n2" || fmt.Sprint(ids) != "[n1 n2]" || !got.ObjectStorage || got.Backlog["n2"] != 1 || got.Backlog["n1"] != 0 {
		t.Fatalf("cluster as n2 sees it: %s", out)
	}
	if code, _ := call(t, e, e.login(e.invA), "GET", "/api/admin/cluster", nil); code != http.StatusForbidden {
		t.Fatalf("an invigilator asked for the cluster: %d, want 403", code)
	}
}

// A former owner's write that reaches the database after another node has
// written for the room under a newer lease is refused (fencing), whatever
// its own clock believed; when the room comes back with a newer lease, the
// node reads the attempt again and its log stays one unbroken chain.
func TestFormerOwnerCannotWrite(t *testing.T) {
	for _, kind := range storetest.DBKinds() {
		t.Run(kind, func(t *testing.T) {
			e := newExamEnv(t, kind, 1)
			other := e.secondNode()
			c := e.cands[0]
			hc := e.login(c)
			path := fmt.Sprintf("/ws/exam?attempt=%d", c.attempt)
			pc, _, err := e.open(hc, path)
			if err != nil {
				t.Fatal(err)
			}
			q := questions(pc.start())[0]["id"].(float64)
			pc.send(map[string]any{"type": "answer", "seq": 1, "question": q, "value": []int{1}})
			pc.await("ack on n1", is("ack", "seq", 1))
			first, _, _ := e.leases.Owner(context.Background(), store.RoomKey(e.room))

			e.web.Node().Drain(context.Background())
			pc.await("moved", is("closed", "code", "moved"))
			pc2, _, err := other.open(hc, path)
			if err != nil {
				t.Fatal(err)
			}
			pc2.send(map[string]any{"type": "resume", "id": "r"})
			pc2.await("paper on n2", is("paper", "id", "r"))
			pc2.send(map[string]any{"type": "answer", "seq": 2, "question": q, "value": []int{2}})
			pc2.await("ack on n2", is("ack", "seq", 2))
			second, _, _ := e.leases.Owner(context.Background(), store.RoomKey(e.room))
			if second.Node != "n2" || second.Fence <= first.Fence {
				t.Fatalf("leases %+v then %+v: want n2's with a larger fence", first, second)
			}

			err = e.engine.AnswerUnderLease(context.Background(), c.id, c.attempt, first.Fence, 3, int64(q), []int{3})
			if !errors.Is(err, store.ErrNotOwner) {
				t.Fatalf("n1's answer under its old lease: %v, want %v", err, store.ErrNotOwner)
			}
			var n int64
			e.db.Model(&store.AttemptEvent{}).Where("attempt_id = ? AND client_seq = 3", c.attempt).Count(&n)
			if n != 0 {
				t.Fatal("the former owner's answer was written")
			}
			// The room back at n1 under a newer lease: n1's writer must not
			// chain onto the head it cached before n2 wrote.
			if err := e.engine.AnswerUnderLease(context.Background(), c.id, c.attempt, second.Fence+1, 4, int64(q), []int{0}); err != nil {
				t.Fatalf("n1 under a newer lease: %v", err)
			}
			rep, err := e.engine.Verify(context.Background(), c.attempt)
			if err != nil || !rep.OK() {
				t.Fatalf("the attempt's log after two owners: %+v %v", rep, err)
			}
			var a store.Answer
			e.db.Where("attempt_id = ? AND question_id = ?", c.attempt, int64(q)).Take(&a)
			if a.Value != "[0]" {
				t.Fatalf("stored answer %s, want the newest owner's [0]", a.Value)
			}
		})
	}
}

// newS3Env is an env of one candidate whose files go to a fresh S3 server.
func newS3Env(t *testing.T) *examEnv {
	s3 := storetest.NewS3(t)
	e := newExamEnv(t, "sqlite", 1)
	e.stop()
	e.blobs = s3.Open("examhall")
	e.startServer()
	return e
}
