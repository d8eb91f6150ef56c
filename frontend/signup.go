package frontend

import (
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/examhall/examhall/exam/accounts"
	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/store"
)

// Sign-ups are rate-limited per address: 30 attempts in 15 minutes (a
// classroom behind one NAT address may sign up together).
const (
	signupWindow = 15 * time.Minute
	maxSignups   = 30
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
			err = accounts.CheckChosenPassword(pw, r.PostFormValue("password2"), r.PostFormValue("id_number"))
		}
		var u *store.User
		if err == nil {
			u, err = svc.SignUpAccount(r.Context(), certify.SignUp{Name: name, IDNumber: id, Email: r.PostFormValue("email"), Mobile: r.PostFormValue("mobile"), IP: ip}, func() (string, error) {
				return accounts.HashPassword(pw, store.RoleCandidate, accounts.Chosen)
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
			render(w, r, pe.Status, &certPage{pageData: &pageData{Error: &pe.Message}, SignupName: name, SignupID: id, SignupEmail: r.PostFormValue("email"), SignupMobile: r.PostFormValue("mobile"),
				LoginInstead: errors.Is(err, certify.ErrIDRegistered)})
			return
		}
		s.setSessionCookie(w, token)
		http.Redirect(w, r, "/register", http.StatusSeeOther)
	})
}
