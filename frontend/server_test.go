package frontend_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	pngenc "image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/examhall/examhall/exam/accounts"
	"github.com/examhall/examhall/frontend"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// env is a running server on loopback with a few accounts.
type env struct {
	t     *testing.T
	db    *store.DB
	srv   *httptest.Server
	clock *clock
	// candidate logs in with ticket "2026000001" and password candPW.
	candPW, adminPW string
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time         { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration)    { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func (e *env) url(path string) string   { return e.srv.URL + path }
func (e *env) count(table string) int64 { var n int64; e.db.Table(table).Count(&n); return n }

func newEnv(t *testing.T, db *store.DB, bus store.Bus, counters store.Counters) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	clk := &clock{t: time.Now()}
	s, err := frontend.New(frontend.Config{DB: db, Bus: bus, Counters: counters, Metrics: reg, Now: clk.now, Logger: slog.New(slog.DiscardHandler), DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, srv: httptest.NewServer(s), clock: clk, candPW: accounts.NewCandidatePassword(), adminPW: "correct horse battery"}
	t.Cleanup(e.srv.Close)
	mk := func(role store.Role, username, pw, name string, origin accounts.Origin) *store.User {
		h, err := accounts.HashPassword(pw, role, origin)
		if err != nil {
			t.Fatal(err)
		}
		u := &store.User{Role: role, Username: username, PasswordHash: h, DisplayName: name}
		if err := db.Create(u).Error; err != nil {
			t.Fatal(err)
		}
		return u
	}
	mk(store.RoleAdmin, "admin", e.adminPW, "管理员", accounts.Chosen)
	mk(store.RoleInvigilator, "inv01", e.adminPW, "监考员", accounts.Chosen)
	cand := mk(store.RoleCandidate, "2026000001", e.candPW, "张三", accounts.Generated)
	// A candidate who signed up chose their password: it counts as typed.
	mk(store.RoleCandidate, "110101199003074477", "Chosen-pass 42", "李四", accounts.Chosen)
	p := &store.Programme{Code: "p", NameZh: "项目", NameEn: "P", Rules: "{}"}
	db.Create(p)
	ex := &store.Exam{ProgrammeID: p.ID, Code: "e", Kind: "formal", TitleZh: "理论", TitleEn: "Theory", DurationMinutes: 120, PassMark: 80, Blueprint: "{}"}
	db.Create(ex)
	now := time.Now().UTC()
	es := &store.ExamSession{ExamID: ex.ID, Code: "s", Title: "理论考试场次", StartsAt: now, AdmissionEndsAt: now, EndsAt: now.Add(3 * time.Hour), AdmissionMode: "auto"}
	db.Create(es)
	r := &store.Room{SessionID: es.ID, Code: "R01", Name: "第 01 考场"}
	db.Create(r)
	if err := db.Create(&store.Seat{SessionID: es.ID, RoomID: r.ID, CandidateID: cand.ID, Ticket: "2026000001", SeatNo: 1}).Error; err != nil {
		t.Fatal(err)
	}
	return e
}

// browser is a cookie-keeping client that does not follow redirects.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (e *env) do(c *http.Client, method, path string, body io.Reader, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.url(path), body)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// loginForm loads the login page and posts the form as a browser would.
func (e *env) loginForm(c *http.Client, user, pw string) (*http.Response, string) {
	e.t.Helper()
	_, page := e.do(c, "GET", "/login", nil)
	m := csrfInput.FindStringSubmatch(page)
	if m == nil {
		e.t.Fatalf("login page has no CSRF field:\n%s", page)
	}
	form := url.Values{"username": {user}, "password": {pw}, "csrf_token": {m[1]}}
	return e.do(c, "POST", "/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
}

// forEachBackend runs fn on a fresh server for every pair of database and bus.
func forEachBackend(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, kind := range storetest.DBKinds() {
		t.Run(kind, func(t *testing.T) {
			storetest.ForEachBus(t, func(t *testing.T, bus store.Bus, counters store.Counters) {
				fn(t, newEnv(t, storetest.NewDB(t, kind), bus, counters))
			})
		})
	}
}

func TestLoginRoutesEachRoleHome(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		for _, tc := range []struct{ user, pw, home, shows string }{
			{"2026000001", e.candPW, "/candidate", "2026000001"},
			// Candidates may type their password in lower case and without the dash.
			{"2026000001", strings.ToLower(strings.ReplaceAll(e.candPW, "-", "")), "/candidate", "第 01 考场"},
			{"admin", e.adminPW, "/admin", "管理后台"},
			{"inv01", e.adminPW, "/console", "监考台"},
			{"110101199003074477", "Chosen-pass 42", "/candidate", "李四"},
		} {
			c := e.browser()
			resp, body := e.loginForm(c, tc.user, tc.pw)
			if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tc.home {
				t.Fatalf("login %s: %d → %q\n%s", tc.user, resp.StatusCode, resp.Header.Get("Location"), body)
			}
			var sc *http.Cookie
			for _, ck := range resp.Cookies() {
				if ck.Name == "examhall_session" {
					sc = ck
				}
			}
			if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode {
				t.Fatalf("session cookie %+v, want HttpOnly and SameSite=Lax", sc)
			}
			resp, body = e.do(c, "GET", tc.home, nil)
			if resp.StatusCode != 200 || !strings.Contains(body, tc.shows) {
				t.Fatalf("home %s: %d, missing %q", tc.home, resp.StatusCode, tc.shows)
			}
			// The root sends a logged-in user home.
			if resp, _ := e.do(c, "GET", "/", nil); resp.Header.Get("Location") != tc.home {
				t.Errorf("/ → %q, want %q", resp.Header.Get("Location"), tc.home)
			}
		}
		if n := e.count("auth_sessions"); n != 5 {
			t.Errorf("%d sessions, want 5", n)
		}
	})
}

func TestBadLoginsChangeNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		wrong := "准考证号（或用户名）与密码不匹配"
		for _, tc := range []struct {
			name, user, pw string
			status         int
			says           string
		}{
			{"wrong password", "2026000001", "AAAAA-BBBBB", 401, wrong},
			{"unknown ticket", "2099999999", e.candPW, 401, wrong},
			{"unknown username", "nobody", "x", 401, wrong},
			// Only generated passwords forgive case, spaces and dashes.
			{"chosen password in other case", "110101199003074477", "CHOSENPASS42", 401, wrong},
			{"empty", "", "", 400, "请填写准考证号"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := e.loginForm(e.browser(), tc.user, tc.pw)
				if resp.StatusCode != tc.status || !strings.Contains(body, tc.says) || !strings.Contains(body, "role=\"alert\"") {
					t.Fatalf("got %d, want %d with %q:\n%s", resp.StatusCode, tc.status, tc.says, body)
				}
			})
		}
		if n := e.count("auth_sessions"); n != 0 {
			t.Fatalf("bad logins created %d sessions", n)
		}

		// Without the CSRF token the form is refused even with the right password.
		c := e.browser()
		e.do(c, "GET", "/login", nil)
		form := url.Values{"username": {"admin"}, "password": {e.adminPW}}
		resp, body := e.do(c, "POST", "/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode != 403 || !strings.Contains(body, "页面已过期") {
			t.Fatalf("login without CSRF: %d\n%s", resp.StatusCode, body)
		}
		// A token from another browser does not match this one's cookie.
		_, other := e.do(e.browser(), "GET", "/login", nil)
		form.Set("csrf_token", csrfInput.FindStringSubmatch(other)[1])
		resp, _ = e.do(c, "POST", "/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded")
		if resp.StatusCode != 403 {
			t.Fatalf("login with another browser's CSRF token: %d", resp.StatusCode)
		}
		// A cross-site form post is refused before anything else.
		resp, body = e.do(c, "POST", "/login", strings.NewReader(form.Encode()), "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site")
		if resp.StatusCode != 403 || !strings.Contains(body, "cross_origin") {
			t.Fatalf("cross-site login: %d %s", resp.StatusCode, body)
		}
		if n := e.count("auth_sessions"); n != 0 {
			t.Fatalf("refused logins created %d sessions", n)
		}
	})
}

func TestRepeatedFailuresAreSlowed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		c := e.browser()
		for i := 1; i <= 4; i++ {
			if resp, _ := e.loginForm(c, "admin", "guess"); resp.StatusCode != 401 {
				t.Fatalf("failure %d: %d, want 401", i, resp.StatusCode)
			}
		}
		// The fourth failure earns a wait of a second: even the right
		// password waits, told for how long; then it works.
		resp, body := e.loginForm(c, "admin", e.adminPW)
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "秒后再试") {
			t.Fatalf("after 4 failures: %d %q\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		_, apiBody := apiLogin(t, e, e.browser(), "ADMIN", e.adminPW)
		if !strings.Contains(apiBody, "too_many_attempts") {
			t.Fatalf("the wait is per account, whatever the case of its name: %s", apiBody)
		}
		// Another account does not wait.
		if resp, _ := e.loginForm(e.browser(), "inv01", e.adminPW); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("other account: %d", resp.StatusCode)
		}
		time.Sleep(1100 * time.Millisecond)
		if resp, _ := e.loginForm(c, "admin", e.adminPW); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("after the wait: %d", resp.StatusCode)
		}
		var failed int64
		e.db.Model(&store.AuditEvent{}).Where("action = ?", "login_failed").Count(&failed)
		if failed != 4 {
			t.Errorf("%d failed logins audited, want 4", failed)
		}
	})
}

func apiLogin(t *testing.T, e *env, c *http.Client, user, pw string) (*http.Response, string) {
	t.Helper()
	_, b := e.do(c, "GET", "/api/csrf", nil)
	var tok struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.Unmarshal([]byte(b), &tok)
	body, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	return e.do(c, "POST", "/api/login", strings.NewReader(string(body)), "Content-Type", "application/json", "X-CSRF-Token", tok.CSRFToken)
}

func TestSessionsAndRoles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *env) {
		c := e.browser()
		resp, body := apiLogin(t, e, c, "2026000001", e.candPW)
		if resp.StatusCode != 200 {
			t.Fatalf("api login: %d %s", resp.StatusCode, body)
		}
		var me struct {
			CSRFToken string `json:"csrf_token"`
			Home      string
			User      struct{ Role string }
		}
		json.Unmarshal([]byte(body), &me)
		if me.User.Role != "candidate" || me.Home != "/candidate" || me.CSRFToken == "" {
			t.Fatalf("login reply %s", body)
		}

		scenarios := []struct {
			name, method, path string
			client             *http.Client
			hdr                []string
			status             int
			contains           string
		}{
			{"me", "GET", "/api/me", c, nil, 200, `"role":"candidate"`},
			{"own home", "GET", "/candidate", c, nil, 200, "张三"},
			{"admin page", "GET", "/admin", c, nil, 403, "无权"},
			{"console page", "GET", "/console", c, nil, 403, "not allowed"},
			{"anonymous page", "GET", "/candidate", e.browser(), nil, 303, ""},
			{"anonymous api", "GET", "/api/me", &http.Client{}, nil, 401, `"unauthenticated"`},
			{"forged cookie", "GET", "/api/me", &http.Client{}, []string{"Cookie", "examhall_session=FORGED"}, 401, `"session_expired"`},
			{"unknown api", "GET", "/api/nothing", c, nil, 404, `"not_found"`},
			{"logout without csrf", "POST", "/api/logout", c, nil, 403, `"csrf"`},
		}
		for _, s := range scenarios {
			resp, body := e.do(s.client, s.method, s.path, nil, s.hdr...)
			if resp.StatusCode != s.status || !strings.Contains(body, s.contains) {
				t.Errorf("%s: %d, want %d containing %q\n%s", s.name, resp.StatusCode, s.status, s.contains, body)
			}
		}
		// A forged cookie on a page leads to the login page, saying why.
		resp, _ = e.do(&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
			"GET", "/candidate", nil, "Cookie", "examhall_session=FORGED")
		if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || !strings.Contains(loc, "reason=expired") {
			t.Fatalf("forged cookie on a page: %d → %q", resp.StatusCode, loc)
		}

		// The session expires with time.
		e.clock.add(13 * time.Hour)
		if resp, body := e.do(c, "GET", "/api/me", nil); resp.StatusCode != 401 || !strings.Contains(body, "session_expired") {
			t.Fatalf("expired session: %d %s", resp.StatusCode, body)
		}
		e.clock.add(-13 * time.Hour)

		// Logout with the token ends the session for good.
		if resp, body := e.do(c, "POST", "/api/logout", nil, "X-CSRF-Token", me.CSRFToken); resp.StatusCode != 200 {
			t.Fatalf("logout: %d %s", resp.StatusCode, body)
		}
		if n := e.count("auth_sessions"); n != 0 {
			t.Fatalf("%d sessions after logout", n)
		}
		if resp, _ := e.do(c, "GET", "/api/me", nil); resp.StatusCode != 401 {
			t.Fatalf("me after logout: %d", resp.StatusCode)
		}
	})
}

func TestMalformedAPILogin(t *testing.T) {
	e := newEnv(t, storetest.NewDB(t, "sqlite"), store.NewMemBus(), store.NewMemCounters())
	c := e.browser()
	_, b := e.do(c, "GET", "/api/csrf", nil)
	var tok struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.Unmarshal([]byte(b), &tok)
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"not json", "{", 400, "bad_request"},
		{"oversized", `{"username":"` + strings.Repeat("x", 100<<10) + `"}`, 413, "too_large"},
		{"empty", `{}`, 400, "missing_credentials"},
	} {
		resp, body := e.do(c, "POST", "/api/login", strings.NewReader(tc.body), "Content-Type", "application/json", "X-CSRF-Token", tok.CSRFToken)
		if resp.StatusCode != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) || !strings.Contains(body, `"zh"`) {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
	}
	resp, body := e.do(c, "POST", "/api/login", strings.NewReader(`{"username":"admin","password":"x"}`), "Content-Type", "application/json")
	if resp.StatusCode != 403 || !strings.Contains(body, `"csrf"`) {
		t.Errorf("api login without CSRF header: %d %s", resp.StatusCode, body)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	db := storetest.NewDB(t, "sqlite")
	bus := store.NewMemBus()
	e := newEnv(t, db, bus, store.NewMemCounters())
	c := &http.Client{}
	if resp, _ := e.do(c, "GET", "/healthz", nil); resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	if resp, body := e.do(c, "GET", "/readyz", nil); resp.StatusCode != 200 || !strings.Contains(body, `"database":"ok"`) {
		t.Fatalf("readyz %d %s", resp.StatusCode, body)
	}
	resp, body := e.do(c, "GET", "/metrics", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "process_cpu_seconds_total") || !strings.Contains(body, "go_goroutines") ||
		!strings.Contains(body, `examhall_http_requests_total{code="200",route="GET /readyz"}`) {
		t.Fatalf("metrics %d:\n%s", resp.StatusCode, body)
	}
	// Metrics are for operators: not for a request a proxy forwarded.
	req, _ := http.NewRequest("GET", e.url("/metrics"), nil)
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("metrics through a proxy: %v %v", resp, err)
	}
	// A dead bus makes the node unready, and says which part failed, by
	// name only (the error text stays in the log).
	bus.Close()
	if resp, body := e.do(c, "GET", "/readyz", nil); resp.StatusCode != 503 || !strings.Contains(body, `"bus":"unavailable"`) || strings.Contains(body, "closed") {
		t.Fatalf("readyz with closed bus: %d %s", resp.StatusCode, body)
	}
	db.Close()
	if resp, body := e.do(c, "GET", "/readyz", nil); resp.StatusCode != 503 || strings.Contains(body, `"database":"ok"`) {
		t.Fatalf("readyz with closed database: %d %s", resp.StatusCode, body)
	}
}

func TestStaticAndSecurityHeaders(t *testing.T) {
	e := newEnv(t, storetest.NewDB(t, "sqlite"), store.NewMemBus(), store.NewMemCounters())
	resp, body := e.do(&http.Client{}, "GET", "/static/i18n.json", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "login.title") {
		t.Fatalf("i18n.json: %d", resp.StatusCode)
	}
	// Scripts and the dictionary are revalidated by their content's tag: a
	// cached copy is confirmed with a 304, a changed file has a new tag.
	for _, path := range []string{"/static/exam.js", "/static/i18n.json", "/static/app.css"} {
		resp, _ := e.do(&http.Client{}, "GET", path, nil)
		tag := resp.Header.Get("ETag")
		if resp.StatusCode != 200 || len(tag) < 10 || resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("%s: %d, ETag %q, Cache-Control %q", path, resp.StatusCode, tag, resp.Header.Get("Cache-Control"))
		}
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		req.Header.Set("If-None-Match", tag)
		again, err := http.DefaultClient.Do(req)
		if err != nil || again.StatusCode != 304 {
			t.Fatalf("%s with its tag: %v %v, want 304", path, again.StatusCode, err)
		}
		again.Body.Close()
		req.Header.Set("If-None-Match", `"an older release"`)
		if old, err := http.DefaultClient.Do(req); err != nil || old.StatusCode != 200 {
			t.Fatalf("%s with an old tag: %v %v, want 200", path, old.StatusCode, err)
		} else {
			old.Body.Close()
		}
	}
	js, _ := e.do(&http.Client{}, "GET", "/static/exam.js", nil)
	css, _ := e.do(&http.Client{}, "GET", "/static/app.css", nil)
	if js.Header.Get("ETag") == css.Header.Get("ETag") {
		t.Fatal("two files, one tag")
	}
	if resp, body := e.do(&http.Client{}, "GET", "/static/", nil); resp.StatusCode != 404 || strings.Contains(body, "console.js") {
		t.Fatalf("a listing of /static/: %d %.100s", resp.StatusCode, body)
	}
	resp, _ = e.do(&http.Client{}, "GET", "/login", nil)
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("login page lacks %s", h)
		}
	}
}

func TestQuestionImages(t *testing.T) {
	e := newEnv(t, storetest.NewDB(t, "sqlite"), store.NewMemBus(), store.NewMemCounters())
	var png bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{200, 0, 0, 255})
	pngenc.Encode(&png, img)

	admin, cand := e.browser(), e.browser()
	_, body := apiLogin(t, e, admin, "admin", e.adminPW)
	var me struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.Unmarshal([]byte(body), &me)
	_, body = apiLogin(t, e, cand, "2026000001", e.candPW)
	var cme struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.Unmarshal([]byte(body), &cme)

	resp, body := e.do(admin, "POST", "/api/admin/images", bytes.NewReader(png.Bytes()), "X-CSRF-Token", me.CSRFToken)
	var up struct{ Ref, URL string }
	json.Unmarshal([]byte(body), &up)
	if resp.StatusCode != 201 || !strings.HasPrefix(up.Ref, "[img:") || !strings.HasSuffix(up.Ref, ".png]") {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.do(admin, "POST", "/api/admin/images", strings.NewReader("<script>alert(1)</script>"), "X-CSRF-Token", me.CSRFToken); resp.StatusCode != 415 || !strings.Contains(body, "not_image") {
		t.Fatalf("non-image upload: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(cand, "POST", "/api/admin/images", bytes.NewReader(png.Bytes()), "X-CSRF-Token", cme.CSRFToken); resp.StatusCode != 403 {
		t.Fatalf("candidate upload: %d", resp.StatusCode)
	}
	resp, got := e.do(cand, "GET", up.URL, nil)
	if resp.StatusCode != 200 || got != png.String() || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("candidate loads the image: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp, _ := e.do(e.browser(), "GET", up.URL, nil); resp.StatusCode != 303 {
		t.Fatalf("anonymous image: %d", resp.StatusCode)
	}
	for _, bad := range []string{"/bank-images/..%2f..%2fexamhall.db", "/bank-images/" + strings.Repeat("0", 64) + ".png", "/bank-images/x.png"} {
		if resp, _ := e.do(cand, "GET", bad, nil); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", bad, resp.StatusCode)
		}
	}
}

// With a token set, /metrics asks for it, from anywhere.
func TestMetricsToken(t *testing.T) {
	s, err := frontend.New(frontend.Config{DB: storetest.NewDB(t, "sqlite"), Bus: store.NewMemBus(), Counters: store.NewMemCounters(),
		Metrics: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler), DataDir: t.TempDir(), MetricsToken: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer wrong", 401}, {"Bearer s3cret", 200}} {
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != tc.want {
			t.Fatalf("%q: %v %v, want %d", tc.auth, resp, err, tc.want)
		}
		resp.Body.Close()
	}
}
