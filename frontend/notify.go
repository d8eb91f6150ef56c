package frontend

import (
	"crypto/subtle"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/accounts"
	"github.com/examhall/examhall/exam/notify"
	"github.com/examhall/examhall/store"
)

// One-time login links and the admin's view of notifications.
//
// A link in a mail (GET /l/{token}) shows whose account it opens and a
// button; only the button's POST uses it. A mail scanner that follows
// links therefore cannot use up a candidate's link. A browser logged in
// as someone else is refused and the link kept.

var linkToken = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)

// mountNotify serves the login links and the admin's notification API.
func (s *Server) mountNotify(engine *exam.Engine) {
	s.mux.HandleFunc("GET /l/{token}", s.linkPage)
	s.mux.HandleFunc("POST /l/{token}", s.useLink)
	admin := []store.Role{store.RoleAdmin}
	s.mux.Handle("GET /api/admin/messages", s.api(admin, s.userMessages))
	s.mux.Handle("PUT /api/admin/users/{id}/contact", s.api(admin, withID(func(r *http.Request, a *Auth, id int64, req contactReq) (any, error) {
		return nil, accounts.SetContact(r.Context(), s.db, a.User.ID, id, req.Email, req.Mobile)
	})))
	s.mux.Handle("POST /api/admin/messages/{id}/resend", s.api(admin, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		if err := notify.Resend(r.Context(), s.db, id, a.User.ID, s.now()); err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	}))
	s.mux.Handle("POST /api/admin/sessions/{id}/notify-seats", s.api(admin, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		batch, n, err := engine.NotifySeats(r.Context(), id, a.User.ID)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, map[string]any{"batch": batch, "queued": n})
	}))
	s.mux.HandleFunc("POST /api/notify/bounces", s.bounce)
	s.mux.Handle("GET /api/admin/notify/progress", s.api(admin, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		p, err := notify.Progress(r.Context(), s.db, r.URL.Query().Get("batch"))
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, map[string]any{"batch": r.URL.Query().Get("batch"), "states": p})
	}))
}

// linkPage shows whose account a link opens, or why it no longer does.
func (s *Server) linkPage(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	d := &pageData{Title: T("link.title"), CSRF: s.loginCSRF(w, r)}
	l, err := s.checkLink(r, token)
	if err == nil {
		var u *store.User
		if u, err = s.db.UserByID(r.Context(), l.UserID); err == nil {
			d.LinkToken, d.LinkName = token, u.DisplayName
		}
	}
	status := http.StatusOK
	if err != nil {
		pe := publicError(err)
		d.Error, status = &pe.Message, pe.Status
	}
	s.render(w, r, s.pages.link, status, d)
}

// useLink uses a link: its account is logged in and sent to the link's
// page.
func (s *Server) useLink(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	fail := func(err error) {
		pe := publicError(err)
		s.render(w, r, s.pages.link, pe.Status, &pageData{Title: T("link.title"), CSRF: s.loginCSRF(w, r), Error: &pe.Message})
	}
	if err := checkCSRF(r, nil); err != nil {
		fail(err)
		return
	}
	l, err := s.checkLink(r, token)
	if err != nil {
		fail(err)
		return
	}
	// A disabled account keeps its link unused.
	u, err := s.db.UserByID(r.Context(), l.UserID)
	if err == nil && u.Disabled {
		err = ErrAccountDisabled
	}
	if err != nil {
		fail(err)
		return
	}
	if l, err = notify.Redeem(r.Context(), s.db, token, s.now()); err != nil {
		fail(err)
		return
	}
	ip := clientIP(r)
	_, cookie, err := s.openSession(r.Context(), u, ip, r.UserAgent())
	if err != nil {
		fail(err)
		return
	}
	s.audit(r.Context(), &u.ID, "login_link", "user", strconv.FormatInt(u.ID, 10), ip, map[string]any{"link": l.ID, "target": l.Target})
	s.metrics.logins.WithLabelValues(string(u.Role)).Inc()
	s.setSessionCookie(w, cookie)
	http.Redirect(w, r, safeNext(l.Target), http.StatusSeeOther)
}

// ErrLinkNotYours: the browser is logged in as someone else than the
// link's account.
var ErrLinkNotYours = store.NewError("web", store.Conflict, "link_not_yours", "this link is for another account; log out first")

// checkLink finds a link that can still be used, by this browser.
func (s *Server) checkLink(r *http.Request, token string) (store.LoginLink, error) {
	if !linkToken.MatchString(token) {
		return store.LoginLink{}, notify.ErrLinkUnknown
	}
	l, err := notify.Check(r.Context(), s.db, token, s.now())
	if err != nil {
		return l, err
	}
	if u, _, err := s.authenticate(r); err == nil && u.ID != l.UserID {
		return l, ErrLinkNotYours
	}
	return l, nil
}

// userMessages finds a person by ticket number or login name and lists
// their contact and messages (GET /api/admin/messages?user=...).
func (s *Server) userMessages(w http.ResponseWriter, r *http.Request, a *Auth) error {
	u, err := s.findAccount(r.Context(), strings.TrimSpace(r.URL.Query().Get("user")))
	if err != nil {
		return err
	}
	ms, err := s.db.MessagesOf(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"user": map[string]any{"id": u.ID, "username": u.Username, "name": u.DisplayName,
		"email": u.Email, "mobile": u.Mobile}, "messages": ms})
}

type contactReq struct {
	Email  string `json:"email"`
	Mobile string `json:"mobile"`
}

// ErrNoBounces: bounce reports are not taken (no --bounce-token) or the
// token is wrong.
var ErrNoBounces = store.NewError("web", store.Unauthenticated, "bounce_token", "bounce reports need the --bounce-token as a bearer token")

// bounce takes a mail provider's report that a mail came back (POST
// /api/notify/bounces, bearer token): {"message_id", "reason"}.
func (s *Server) bounce(w http.ResponseWriter, r *http.Request) {
	tok := s.cfg.BounceToken
	got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == "" || subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
		s.writeError(w, r, ErrNoBounces)
		return
	}
	var req struct {
		MessageID string `json:"message_id"`
		Reason    string `json:"reason"`
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := decodeJSON(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := notify.Bounce(r.Context(), s.db, req.MessageID, req.Reason, s.now()); err != nil {
		s.writeError(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
}
