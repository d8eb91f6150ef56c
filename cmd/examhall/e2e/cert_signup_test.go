package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/examhall/examhall/store"
)

// signupForm is a browser on /signup: it holds the CSRF cookie and the
// form's token.
type signupForm struct {
	hc    *http.Client
	token string
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func (e *certEnv) signupPage(t *testing.T) *signupForm {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(e.srv.URL + "/signup")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /signup: %v %v", resp, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfInput.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no CSRF token on the sign-up page")
	}
	return &signupForm{hc: hc, token: string(m[1])}
}

// post submits the form; without is a field to leave out.
func (f *signupForm) post(t *testing.T, e *certEnv, name, id, pw, pw2, without string) (*http.Response, string) {
	t.Helper()
	v := url.Values{"csrf_token": {f.token}, "name": {name}, "id_number": {id}, "password": {pw}, "password2": {pw2}}
	v.Del(without)
	resp, err := f.hc.PostForm(e.srv.URL+"/signup", v)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A new candidate signs up from the public site, is logged in and goes on
// to /register; a known ID number is told to log in; a bad checksum, a
// short password, a missing CSRF token are refused and change nothing; the
// address is rate-limited.
func TestCertSignUp(t *testing.T) {
	e := newCertEnv(t, "{}")
	accounts := func() int64 {
		var n int64
		e.db.Model(&store.User{}).Count(&n)
		return n
	}
	resp, err := http.Get(e.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `href="/signup"`) {
		t.Fatal("the login page does not link to the sign-up")
	}

	before := accounts()
	f := e.signupPage(t)
	id := idNumber("32010219960815234")
	for _, c := range []struct {
		what, name, id, pw, pw2, without string
		status                           int
		text                             string
	}{
		{"a wrong check digit", "陈一", id[:17] + "0", "correct horse battery", "correct horse battery", "", 400, "身份证号"},
		{"no name", " ", id, "correct horse battery", "correct horse battery", "", 400, ""},
		{"a short password", "陈一", id, "abc-12 34", "abc-12 34", "", 400, "10"},
		{"passwords that differ", "陈一", id, "correct horse battery", "correct horse batter", "", 400, "不一致"},
		{"no CSRF token", "陈一", id, "correct horse battery", "correct horse battery", "csrf_token", 403, ""},
	} {
		resp, body := f.post(t, e, c.name, c.id, c.pw, c.pw2, c.without)
		if resp.StatusCode != c.status || !strings.Contains(body, c.text) || !strings.Contains(body, `id="signup"`) {
			t.Errorf("%s: %d, want %d with %q", c.what, resp.StatusCode, c.status, c.text)
		}
		if c.status == 400 && c.name == "陈一" && !strings.Contains(body, `value="陈一"`) {
			t.Errorf("%s: the form forgets the name", c.what)
		}
	}
	if n := accounts(); n != before {
		t.Fatalf("refused sign-ups made %d accounts", n-before)
	}

	// The happy path: logged in, sent on to /register, and can register.
	resp, _ = f.post(t, e, "陈一", strings.ToLower(id), "Correct Horse Battery", "Correct Horse Battery", "")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/register" {
		t.Fatalf("sign-up: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var u store.User
	if err := e.db.Where("username = ?", id).Take(&u).Error; err != nil || u.Role != store.RoleCandidate || u.DisplayName != "陈一" {
		t.Fatalf("the account: %+v %v", u, err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=19456,") {
		t.Fatalf("a chosen password is not hashed with the strong parameters: %s", u.PasswordHash[:30])
	}
	var ev store.AuditEvent
	if err := e.db.Where("action = ? AND actor_id = ?", "signed_up", u.ID).Take(&ev).Error; err != nil || ev.IP == "" {
		t.Fatalf("the sign-up is not audited with its address: %+v %v", ev, err)
	}
	hc := f.hc
	hc.CheckRedirect = nil
	code, body := call(t, e.examEnv, hc, "GET", "/register", nil)
	if code != 200 || !strings.Contains(string(body), "陈一") {
		t.Fatalf("/register after sign-up: %d", code)
	}
	code, body = call(t, e.examEnv, hc, "POST", "/api/cert/registrations", map[string]any{"level_id": e.levels["junior"],
		"name": "陈一", "id_number": id, "education": "high_school", "training_hours": 48})
	expect(t, "register after sign-up", code, body, 201, "")
	// The chosen password logs in with the ID number.
	e.login(cand{ticket: id, password: "Correct Horse Battery"})

	// The same ID number again, or one an admin registered: log in instead.
	adminReg := idNumber("44030519851212456")
	code, body = call(t, e.examEnv, e.login(e.admin), "POST", "/api/cert/registrations", map[string]any{"level_id": e.levels["junior"],
		"name": "赵六", "id_number": adminReg, "education": "high_school", "training_hours": 48})
	expect(t, "admin registers", code, body, 201, "")
	before = accounts()
	for _, known := range []string{id, adminReg} {
		resp, page := e.signupPage(t).post(t, e, "someone", known, "another long password", "another long password", "")
		if resp.StatusCode != 409 || !strings.Contains(page, `id="login-instead"`) || !strings.Contains(page, "请直接登录") {
			t.Errorf("a known ID number %s: %d", known, resp.StatusCode)
		}
	}
	if n := accounts(); n != before {
		t.Fatal("a duplicate made an account")
	}

	// Rate limit: 30 attempts per address in 15 minutes (9 made above).
	g := e.signupPage(t)
	limited := false
	for range 30 {
		resp, body := g.post(t, e, "x", "1", "", "", "")
		if resp.StatusCode == 429 {
			limited = strings.Contains(body, "分钟")
			break
		}
	}
	if !limited {
		t.Fatal("sign-up is not rate-limited")
	}
}
