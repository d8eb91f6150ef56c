package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"testing"
)

// publicRoutes answer anyone: the login and sign-up, public certificate
// checks, health, the pages' files and the phone page (admitted by its
// pairing link). Every other route must refuse a caller without a login, so
// a new route that forgets to decide fails this test.
var publicRoutes = map[string]bool{
	"/api/": true, "GET /{$}": true, "GET /login": true, "POST /login": true, "GET /signup": true, "POST /signup": true,
	"GET /api/csrf": true, "POST /api/login": true, "GET /verify": true, "GET /api/verify": true, "GET /cert/{number}": true,
	"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /static/": true, "GET /static/i18n.json": true,
	"GET /phone": true, "GET /ws/phone": true, "GET /api/cert/levels": true,
}

// staffPrefixes are paths no candidate may use.
var staffPrefixes = []string{"/api/admin/", "/api/proctor/", "/api/review/", "/api/panel", "/api/recordings/", "/admin", "/console", "/review", "/panel", "/ws/console"}

// Every route decides who may call it: without a login nothing but the
// public routes answers; a candidate gets no staff route and nothing of
// another candidate's attempt; a panel member gets nothing but their
// panels; an invigilator gets nothing of another room's attempts; a
// reviewer gets no admin or panel route.
func TestEveryRouteDecidesWhoMayCallIt(t *testing.T) {
	e := newExamEnv(t, "sqlite", 2)
	other := itoa(e.cands[1].attempt)
	fill := func(pattern string) (method, path string) {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "GET", pattern
		}
		r := strings.NewReplacer("{id}", other, "{user}", "1", "{name}", "x.jpg", "{number}", "X", "{$}", "")
		return method, r.Replace(path)
	}
	do := func(hc *http.Client, token, method, path string) int {
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("X-CSRF-Token", token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	jar, _ := cookiejar.New(nil)
	anon := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cand := e.login(e.cands[0])
	cand.CheckRedirect = anon.CheckRedirect
	token := csrf(t, cand, e.srv.URL)
	panel := e.login(e.panel)
	panel.CheckRedirect = anon.CheckRedirect
	panelToken := csrf(t, panel, e.srv.URL)
	invD := e.login(e.invD)
	invD.CheckRedirect = anon.CheckRedirect
	invDToken := csrf(t, invD, e.srv.URL)
	reviewer := e.login(e.reviewer)
	reviewer.CheckRedirect = anon.CheckRedirect
	reviewerToken := csrf(t, reviewer, e.srv.URL)
	routes := e.web.Routes()
	if len(routes) < 100 {
		t.Fatalf("only %d routes", len(routes))
	}
	for _, pattern := range routes {
		method, path := fill(pattern)
		if !publicRoutes[pattern] {
			if code := do(anon, "", method, path); code < 300 || code >= 500 {
				t.Errorf("%s without a login: %d", pattern, code)
			}
		}
		staff := false
		for _, p := range staffPrefixes {
			staff = staff || strings.HasPrefix(path, p)
		}
		foreign := strings.Contains(pattern, "/api/attempts/{id}")
		if staff || foreign {
			if code := do(cand, token, method, path); code < 300 || code >= 500 {
				t.Errorf("%s as a candidate (another's attempt %s): %d", pattern, other, code)
			}
		}
		if !publicRoutes[pattern] && !panelRoutes[pattern] {
			if code := do(panel, panelToken, method, path); code < 300 || code >= 500 {
				t.Errorf("%s as a panel member: %d", pattern, code)
			}
		}
		// An invigilator of another room (not a chief) gets nothing of this
		// room's attempts, and no admin, review or panel route.
		if strings.Contains(pattern, "/attempts/{id}") || strings.HasPrefix(path, "/api/recordings/") || strings.HasPrefix(path, "/api/admin/") ||
			strings.HasPrefix(path, "/admin") || strings.HasPrefix(path, "/api/panel") || strings.HasPrefix(path, "/panel") || strings.HasPrefix(path, "/api/review/") {
			if code := do(invD, invDToken, method, path); code < 300 || code >= 500 {
				t.Errorf("%s as another room's invigilator: %d", pattern, code)
			}
		}
		if strings.HasPrefix(path, "/api/panel") || strings.HasPrefix(path, "/panel") || strings.HasPrefix(path, "/api/admin/") || strings.HasPrefix(path, "/admin") {
			if code := do(reviewer, reviewerToken, method, path); code < 300 || code >= 500 {
				t.Errorf("%s as a reviewer: %d", pattern, code)
			}
		}
	}
}

// panelRoutes are all a panel member may use besides the public routes:
// their panels, their scores and declarations, the documents of the
// sittings they sit on (checked per sitting), and their own session.
var panelRoutes = map[string]bool{
	"GET /panel": true, "GET /api/panel": true, "POST /api/panel/{id}/score": true, "POST /api/panel/{id}/conflict": true,
	"GET /api/cert/sittings/{id}/document": true, "GET /api/me": true, "POST /api/logout": true, "POST /logout": true,
}

// socketDecisions says, for every message type of every socket, which object
// it may name. A socket is opened only by its owner (checked below), so most
// messages act on the socket's own attempt or room and name nothing else;
// those that name an object are sent with another's, and must be refused with
// the code given. A new message type without a decision fails the test.
var socketDecisions = map[string]map[string]string{
	"/ws/exam": {
		"resume": "", "start": "", "submit": "", "time": "", "signal": "", "pair": "", "phone_view": "",
		"view_answer": "", "view_ice": "", "media_config": "", "media_offer": "", "media_ice": "",
		"answer": "unknown_question", "mark": "unknown_question", "message_ack": "no_message",
	},
	"/ws/console": {"view": "", "view_answer": "", "view_ice": "", "view_focus": "not_found"},
	"/ws/phone":   {"media_config": "", "media_offer": "", "media_ice": ""},
}

// Every socket decides who may open it and every message names only its
// sender's objects: each role is tried on each socket with its own and
// another's attempt or room, and each message that names an object is sent
// with another's.
func TestEverySocketMessageDecidesWhoMaySendIt(t *testing.T) {
	e := newExamEnv(t, "sqlite", 2)
	sockets := e.web.Sockets()
	for path, types := range sockets {
		for _, typ := range types {
			if _, ok := socketDecisions[path][typ]; !ok {
				t.Errorf("%s message %q has no access decision in socketDecisions", path, typ)
			}
		}
	}
	if len(sockets) != len(socketDecisions) {
		t.Errorf("sockets %v, decisions for %d", sockets, len(socketDecisions))
	}
	var r2 int64
	e.db.Raw("SELECT id FROM rooms WHERE code = 'R02'").Scan(&r2)
	mine, theirs := itoa(e.cands[0].attempt), itoa(e.cands[1].attempt)
	logins := map[string]*http.Client{"anonymous": {}, "candidate": e.login(e.cands[0]), "invigilator": e.login(e.invA),
		"other room's invigilator": e.login(e.invD), "chief": e.login(e.chief), "reviewer": e.login(e.reviewer), "panel": e.login(e.panel), "admin": e.login(e.admin)}
	opens := []struct {
		path string
		may  []string
	}{
		{"/ws/exam?attempt=" + mine, []string{"candidate"}},
		{"/ws/exam?attempt=" + theirs, nil},
		{"/ws/console?room=" + itoa(e.room), []string{"invigilator", "chief", "admin"}},
		{"/ws/console?room=" + itoa(r2), []string{"other room's invigilator", "chief", "admin"}},
		{"/ws/phone", nil},
		{"/ws/phone?key=guessed", nil},
		{"/ws/phone?t=guessed", nil},
	}
	for _, o := range opens {
		for who, hc := range logins {
			c, resp, err := e.open(hc, o.path)
			if slices.Contains(o.may, who) {
				if err != nil {
					t.Errorf("%s may open %s: %v %v", who, o.path, err, resp)
				}
			} else if err == nil || resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("%s opened %s: %v %v", who, o.path, err, resp)
			}
			if c != nil {
				c.ws.Close()
			}
		}
	}

	// The candidate's socket: another's question and message.
	c1 := e.connect(e.cands[1])
	theirQs := questions(c1.start())
	c0 := e.connect(e.cands[0])
	ownQs := map[float64]bool{}
	for _, q := range questions(c0.start()) {
		ownQs[q["id"].(float64)] = true
	}
	foreignQ := 1e9
	for _, q := range theirQs {
		if id := q["id"].(float64); !ownQs[id] {
			foreignQ = id
		}
	}
	code, b := call(t, e, logins["invigilator"], "POST", "/api/proctor/attempts/"+theirs+"/messages", map[string]string{"body": "请调整摄像头"})
	if code != 201 {
		t.Fatalf("message to the other candidate: %d %s", code, b)
	}
	var msg struct{ ID int64 }
	json.Unmarshal(b, &msg)
	refused := func(c *client, typ string, m map[string]any) {
		t.Helper()
		m["type"] = typ
		m["id"] = typ
		c.send(m)
		got := c.await(typ+" refused", func(r map[string]any) bool {
			return r["id"] == typ || m["seq"] != nil && fmt.Sprint(r["seq"]) == fmt.Sprint(m["seq"])
		})
		if got["type"] != "error" || got["code"] != socketDecisions["/ws/exam"][typ] && got["code"] != socketDecisions["/ws/console"][typ] {
			t.Errorf("%s naming another's object: %v", typ, got)
		}
	}
	refused(c0, "answer", map[string]any{"seq": 1, "question": int64(foreignQ), "value": []int{0}})
	refused(c0, "mark", map[string]any{"seq": 2, "question": int64(foreignQ), "marked": true})
	refused(c0, "message_ack", map[string]any{"message_id": msg.ID})
	var acked int64
	e.db.Raw("SELECT COUNT(*) FROM proctor_messages WHERE acked_at IS NOT NULL").Scan(&acked)
	if acked != 0 {
		t.Error("another candidate's message was acknowledged")
	}

	// The console of room R02: a candidate of R01 cannot be opened.
	con, _, err := e.open(logins["other room's invigilator"], "/ws/console?room="+itoa(r2))
	if err != nil {
		t.Fatal(err)
	}
	con.await("room", is("room"))
	refused(con, "view_focus", map[string]any{"attempt_id": e.cands[0].attempt})
	con.send(map[string]any{"type": "view_focus", "id": "none", "attempt_id": 0})
	con.await("focus on nobody", is("ack", "id", "none"))
}
