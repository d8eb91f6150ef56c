package frontend

import (
	"encoding/json"
	"errors"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

type pages struct {
	login, home, exam, console, phone, review, report, check, link *template.Template
}

func loadPages() (*pages, error) {
	funcs := template.FuncMap{"t": func(key string, pairs ...string) Text { return T(key, pairs...) }}
	load := func(name string) (*template.Template, error) {
		return template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name)
	}
	var p pages
	var err error
	if p.login, err = load("login.html"); err != nil {
		return nil, err
	}
	if p.home, err = load("home.html"); err != nil {
		return nil, err
	}
	if p.exam, err = load("exam.html"); err != nil {
		return nil, err
	}
	if p.console, err = load("console.html"); err != nil {
		return nil, err
	}
	if p.phone, err = load("phone.html"); err != nil {
		return nil, err
	}
	if p.review, err = load("review.html"); err != nil {
		return nil, err
	}
	if p.report, err = load("report.html"); err != nil {
		return nil, err
	}
	if p.check, err = load("check.html"); err != nil {
		return nil, err
	}
	if p.link, err = load("link.html"); err != nil {
		return nil, err
	}
	return &p, nil
}

// pageData is what every page template gets.
type pageData struct {
	Title  Text
	CSRF   string
	User   *store.User
	Error  *Text
	Notice *Text
	// Login page
	Username string
	Next     string
	// Home pages
	Coming Text
	Seats  []store.SeatView
	Rooms  []store.RoomView
	// Incident report
	Report *proctor.Report
	// Exam page
	Attempt int64
	// Device check: the upload the exam's cameras need, in kbit/s.
	NeedKbps int
	Wide     bool
	// Face: the page runs the browser's face analysis.
	Face  bool
	Voice bool // the exam page detects speech (data-voice="on")
	// One-time login link: its token and whose account it opens.
	LinkToken, LinkName string
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, t *template.Template, status int, d *pageData) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := t.Execute(w, d); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "path", r.URL.Path, "err", err)
	}
}

// PageHandler handles an authenticated page request.
type PageHandler func(w http.ResponseWriter, r *http.Request, a *Auth) error

// page guards a page like api does, but sends a browser without a valid
// login to the login page (saying why) and shows other errors as a page.
func (s *Server) page(roles []store.Role, h PageHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := s.guard(r, roles)
		if err == nil {
			err = h(w, r, a)
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrUnauthenticated), errors.Is(err, ErrSessionExpired):
			q := url.Values{"next": {r.URL.RequestURI()}}
			if errors.Is(err, ErrSessionExpired) {
				q.Set("reason", "expired")
			}
			http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
		default:
			pe := publicError(err)
			if pe.Status >= 500 {
				s.log.ErrorContext(r.Context(), "page failed", "path", r.URL.Path, "err", err)
			}
			d := &pageData{Title: T("app.name"), Error: &pe.Message}
			if a != nil {
				d.User, d.CSRF = a.User, a.Session.CSRFToken
			}
			s.render(w, r, s.pages.home, pe.Status, d)
		}
	})
}

func (s *Server) handleRoot(w http.ResponseWriter, r *http.Request) {
	if u, _, err := s.authenticate(r); err == nil {
		http.Redirect(w, r, Home(u.Role), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	if u, _, err := s.authenticate(r); err == nil {
		http.Redirect(w, r, Home(u.Role), http.StatusSeeOther)
		return
	}
	d := &pageData{Title: T("login.title"), CSRF: s.loginCSRF(w, r), Next: safeNext(r.URL.Query().Get("next"))}
	switch r.URL.Query().Get("reason") {
	case "expired":
		d.Notice = ptr(T("login.expired"))
	case "bye":
		d.Notice = ptr(T("login.loggedout"))
	}
	s.render(w, r, s.pages.login, http.StatusOK, d)
}

func (s *Server) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	err := checkCSRF(r, nil)
	var u *store.User
	var token string
	if err == nil {
		u, _, token, err = s.login(r.Context(), r.PostFormValue("username"), r.PostFormValue("password"), clientIP(r), r.UserAgent())
	}
	if err != nil {
		pe := publicError(err)
		if pe.Status >= 500 {
			s.log.ErrorContext(r.Context(), "login failed", "err", err)
		}
		if rl := (*RateLimitedError)(nil); errors.As(err, &rl) {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(rl.RetryAfter.Seconds()))))
		}
		d := &pageData{Title: T("login.title"), CSRF: s.loginCSRF(w, r), Error: &pe.Message,
			Username: r.PostFormValue("username"), Next: safeNext(r.PostFormValue("next"))}
		s.render(w, r, s.pages.login, pe.Status, d)
		return
	}
	s.setSessionCookie(w, token)
	next := safeNext(r.PostFormValue("next"))
	if next == "" || !strings.HasPrefix(next, Home(u.Role)) {
		next = Home(u.Role)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) handleLogoutForm(w http.ResponseWriter, r *http.Request, a *Auth) error {
	if err := s.logout(w, r, a.User); err != nil {
		return err
	}
	http.Redirect(w, r, "/login?reason=bye", http.StatusSeeOther)
	return nil
}

func (s *Server) handleHome(w http.ResponseWriter, r *http.Request, a *Auth) error {
	role := string(a.User.Role)
	d := &pageData{Title: T("home." + role + ".title"), CSRF: a.Session.CSRFToken, User: a.User, Coming: T("home." + role + ".coming")}
	var err error
	switch a.User.Role {
	case store.RoleCandidate:
		d.Seats, err = s.db.SeatsOfCandidate(r.Context(), a.User.ID)
	case store.RoleInvigilator:
		d.Rooms, err = s.db.RoomsOfInvigilator(r.Context(), a.User.ID)
	}
	if err != nil {
		return err
	}
	s.render(w, r, s.pages.home, http.StatusOK, d)
	return nil
}

// handleCSRF gives a logged-out API client (a script, the load generator) the
// token its login must carry.
func (s *Server) handleCSRF(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"csrf_token": s.loginCSRF(w, r)})
}

func (s *Server) handleLoginAPI(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var req struct{ Username, Password string }
	if err := checkCSRF(r, nil); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.writeError(w, r, ErrTooLarge)
		} else {
			s.writeError(w, r, ErrBadRequest)
		}
		return
	}
	u, sess, token, err := s.login(r.Context(), req.Username, req.Password, clientIP(r), r.UserAgent())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.setSessionCookie(w, token)
	writeJSON(w, http.StatusOK, meReply(&Auth{User: u, Session: sess}))
}

func meReply(a *Auth) map[string]any {
	return map[string]any{
		"user":       map[string]any{"id": a.User.ID, "role": a.User.Role, "username": a.User.Username, "display_name": a.User.DisplayName, "chief": a.User.Chief},
		"home":       Home(a.User.Role),
		"csrf_token": a.Session.CSRFToken,
		"expires_at": a.Session.ExpiresAt,
	}
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return ""
	}
	return next
}

func ptr[T any](v T) *T { return &v }

// handleExamPage serves the exam page; the page opens the attempt's socket,
// which checks that the attempt is the candidate's own.
func (s *Server) handleExamPage(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := strconv.ParseInt(r.URL.Query().Get("attempt"), 10, 64)
	if err != nil || id <= 0 {
		return store.ErrNotFound
	}
	s.render(w, r, s.pages.exam, http.StatusOK, &pageData{Title: T("home.candidate.title"), CSRF: a.Session.CSRFToken, User: a.User, Attempt: id, Wide: true, Face: s.faceOn, Voice: s.voiceOn})
	return nil
}

// handleConsolePage serves the invigilator console (admins may open it too).
func (s *Server) handleConsolePage(w http.ResponseWriter, r *http.Request, a *Auth) error {
	s.render(w, r, s.pages.console, http.StatusOK, &pageData{Title: T("home.invigilator.title"), CSRF: a.Session.CSRFToken, User: a.User, Wide: true})
	return nil
}
