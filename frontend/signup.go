package frontend

import (
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/store"
)

// Sign-ups are rate-limited per address: 30 attempts in 15 minutes (a
// classroom behind one NAT address may sign up together).
const (
	signupWindow = 15 * time.Minute
	maxSignups   = 30
	// minPasswordLen is the shortest chosen password, in characters; it is
	// kept exactly as typed (case, spaces and dashes count).
	minPasswordLen = 10
)

// Errors of a chosen password.
var (
	ErrPasswordShort    = errors.New("password too short")
	ErrPasswordWeak     = errors.New("password too easy to guess")
	ErrPasswordMismatch = errors.New("passwords differ")
)

// mountSignup puts the public sign-up on the web: GET /signup shows the
// form, POST /signup opens a candidate account, logs it in and goes on to
// /register.
func (s *Server) mountSignup(svc *certify.Service, page *template.Template) {
	render := func(w http.ResponseWriter, r *http.Request, status int, d *certPage) {
		d.pageData.Title, d.pageData.CSRF = T("signup.title"), s.loginCSRF(w, r)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		if err := page.Execute(w, d); err != nil {
			s.log.ErrorContext(r.Context(), "render page", "path", r.URL.Path, "err", err)
		}
	}
	s.mux.HandleFunc("GET /signup", func(w http.ResponseWriter, r *http.Request) {
		if u, _, err := s.authenticate(r); err == nil {
			http.Redirect(w, r, Home(u.Role), http.StatusSeeOther)
			return
		}
		render(w, r, http.StatusOK, &certPage{pageData: &pageData{}})
	})
	s.mux.HandleFunc("POST /signup", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		ip := clientIP(r)
		err := checkCSRF(r, nil)
		if err == nil {
			n, left, herr := s.counters.Hit(r.Context(), "signup:"+ip, signupWindow)
			if err = herr; err == nil && n > maxSignups {
				err = &RateLimitedError{RetryAfter: left}
			}
		}
		name, id, pw := r.PostFormValue("name"), r.PostFormValue("id_number"), r.PostFormValue("password")
		if err == nil {
			err = checkChosenPassword(pw, r.PostFormValue("password2"), r.PostFormValue("id_number"))
		}
		var u *store.User
		if err == nil {
			u, err = svc.SignUpAccount(r.Context(), certify.SignUp{Name: name, IDNumber: id, IP: ip}, func() (string, error) {
				return HashPassword(pw, store.RoleCandidate, Chosen)
			})
		}
		var token string
		if err == nil {
			_, token, err = s.openSession(r.Context(), u, ip, r.UserAgent())
		}
		if err != nil {
			pe := publicError(err)
			if pe.Status >= 500 {
				s.log.ErrorContext(r.Context(), "sign-up failed", "err", err)
			}
			render(w, r, pe.Status, &certPage{pageData: &pageData{Error: &pe.Message}, SignupName: name, SignupID: id,
				LoginInstead: errors.Is(err, certify.ErrIDRegistered)})
			return
		}
		s.setSessionCookie(w, token)
		http.Redirect(w, r, "/register", http.StatusSeeOther)
	})
}

//go:embed common-passwords.txt
var commonPasswordList string

// commonPasswords are refused whatever their length.
var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(commonPasswordList, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[line] = true
		}
	}
	return m
}()

// checkChosenPassword applies the rules of a password a person chooses:
// at least 10 characters not counting spaces and dashes; at least 4
// different ones; not digits only (a birthday, a phone or ID number); not
// one of the commonest passwords; not containing the login name.
func checkChosenPassword(pw, again, login string) error {
	core := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return unicode.ToLower(r)
	}, pw)
	if utf8.RuneCountInString(core) < minPasswordLen || len(pw) > 200 {
		return ErrPasswordShort
	}
	if pw != again {
		return ErrPasswordMismatch
	}
	distinct, digits := map[rune]bool{}, true
	for _, r := range core {
		distinct[r] = true
		digits = digits && unicode.IsDigit(r)
	}
	login = strings.ToLower(strings.TrimSpace(login))
	switch {
	case len(distinct) < 4, digits, commonPasswords[core], login != "" && strings.Contains(core, login):
		return ErrPasswordWeak
	}
	return nil
}
