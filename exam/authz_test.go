package exam_test

import (
	"net/http"
	"net/http/cookiejar"
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
// public routes answers; a candidate gets no staff route; and a candidate
// gets nothing of another candidate's attempt.
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
	}
}
