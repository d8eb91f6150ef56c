package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/examhall/examhall/store"
)

// A candidate kept waiting by wrong passwords is let in at once when their
// invigilator clears the wait; another invigilator may not; it is audited.
func TestInvigilatorClearsALoginWait(t *testing.T) {
	e := newExamEnv(t, "sqlite", 1)
	cd := e.cands[0]
	login := func(pw string) int {
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar}
		resp, err := hc.Get(e.srv.URL + "/api/csrf")
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			CSRFToken string `json:"csrf_token"`
		}
		json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/login", strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, cd.ticket, pw)))
		req.Header.Set("X-CSRF-Token", tok.CSRFToken)
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 4 {
		if code := login("wrong"); code != 401 {
			t.Fatalf("failure %d: %d", i+1, code)
		}
	}
	if code := login(cd.password); code != 429 {
		t.Fatalf("after 4 failures: %d, want 429", code)
	}
	clear := func(inv cand) int {
		hc := e.login(inv)
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/proctor/attempts/%d/clear-login-delay", e.srv.URL, cd.attempt), nil)
		req.Header.Set("X-CSRF-Token", csrf(t, hc, e.srv.URL))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := clear(e.invD); code != 403 {
		t.Fatalf("an invigilator of another room cleared: %d", code)
	}
	if code := login(cd.password); code != 429 {
		t.Fatalf("still waiting: %d", code)
	}
	if code := clear(e.invA); code != 200 {
		t.Fatalf("the responsible invigilator: %d", code)
	}
	if code := login(cd.password); code != 200 {
		t.Fatalf("after clearing: %d", code)
	}
	var n int64
	e.db.Model(&store.AuditEvent{}).Where("action = ? AND actor_id = ?", "login_delay_cleared", e.invA.id).Count(&n)
	if n != 1 {
		t.Fatalf("%d audit events", n)
	}
}
