package frontend

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/examhall/examhall/store"
)

// Cookie names.
const (
	sessionCookie = "examhall_session"
	csrfCookie    = "examhall_csrf"
	csrfHeader    = "X-CSRF-Token"
	csrfField     = "csrf_token"
)

// Login throttling: an account is locked for the rest of a 15-minute window
// after 5 failed logins, an address after 50 (a whole exam room may sit
// behind one NAT address, so its limit is higher).
const (
	loginWindow          = 15 * time.Minute
	maxAccountFailures   = 5
	maxAddressFailures   = 50
	failureCounterPrefix = "login-fail:"
)

// homes is where each role lands after logging in.
var homes = map[store.Role]string{
	store.RoleCandidate:   "/candidate",
	store.RoleInvigilator: "/console",
	store.RoleReviewer:    "/review",
	store.RoleAdmin:       "/admin",
}

// Home returns the landing page of a role.
func Home(r store.Role) string { return homes[r] }

// login checks credentials and opens a session. It returns the new session's
// cookie token.
func (s *Server) login(ctx context.Context, name, password, ip, ua string) (*store.User, *store.AuthSession, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || password == "" {
		return nil, nil, "", ErrMissingCredentials
	}
	acctKey := failureCounterPrefix + "acct:" + strings.ToLower(name)
	ipKey := failureCounterPrefix + "ip:" + ip
	for _, k := range []struct {
		key string
		max int64
	}{{acctKey, maxAccountFailures}, {ipKey, maxAddressFailures}} {
		n, left, err := s.counters.Peek(ctx, k.key)
		if err != nil {
			return nil, nil, "", err
		}
		if n >= k.max {
			return nil, nil, "", &RateLimitedError{RetryAfter: left}
		}
	}

	u, err := s.findAccount(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, nil, "", err
	}
	if u == nil || !checkPassword(u, password) {
		refuseEvenly(u, password)
		var actor *int64
		if u != nil {
			actor = &u.ID
		}
		s.audit(ctx, actor, "login_failed", "account", name, ip, nil)
		n, _, err := s.counters.Hit(ctx, acctKey, loginWindow)
		if err != nil {
			return nil, nil, "", err
		}
		if _, _, err := s.counters.Hit(ctx, ipKey, loginWindow); err != nil {
			return nil, nil, "", err
		}
		s.metrics.loginFailures.Inc()
		if n >= maxAccountFailures {
			_, left, _ := s.counters.Peek(ctx, acctKey)
			s.log.WarnContext(ctx, "account locked after failed logins", "account", name, "ip", ip)
			return nil, nil, "", &RateLimitedError{RetryAfter: left}
		}
		return nil, nil, "", ErrBadCredentials
	}
	if u.Disabled {
		return nil, nil, "", ErrAccountDisabled
	}
	s.counters.Reset(ctx, acctKey)
	sess, token, err := s.openSession(ctx, u, ip, ua)
	if err != nil {
		return nil, nil, "", err
	}
	s.audit(ctx, &u.ID, "login", "user", fmt.Sprint(u.ID), ip, nil)
	s.metrics.logins.WithLabelValues(string(u.Role)).Inc()
	return u, sess, token, nil
}

// openSession opens a session for an account whose credentials were
// checked (a login, or a sign-up that just chose them) and returns its
// cookie token.
func (s *Server) openSession(ctx context.Context, u *store.User, ip, ua string) (*store.AuthSession, string, error) {
	token := rand.Text()
	now := s.now()
	sess := &store.AuthSession{
		TokenHash: hashToken(token),
		CSRFToken: rand.Text(),
		UserID:    u.ID,
		IP:        ip,
		UserAgent: truncate(ua, 300),
		CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.SessionTTL),
	}
	if err := s.db.CreateAuthSession(ctx, sess); err != nil {
		return nil, "", err
	}
	return sess, token, nil
}

// findAccount finds the account a login name belongs to: a seat's ticket
// number first (a candidate may hold several tickets), then a username.
func (s *Server) findAccount(ctx context.Context, name string) (*store.User, error) {
	if looksLikeTicket(name) {
		_, u, err := s.db.SeatByTicket(ctx, name)
		if err == nil {
			return u, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	u, err := s.db.UserByUsername(ctx, name)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// looksLikeTicket reports whether a login name is an exam ticket number:
// tickets are all digits, usernames never are.
func looksLikeTicket(name string) bool {
	for _, r := range name {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return name != ""
}

// authenticate finds the logged-in account of a request.
func (s *Server) authenticate(r *http.Request) (*store.User, *store.AuthSession, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil, ErrUnauthenticated
	}
	sess, u, err := s.db.AuthSessionByToken(r.Context(), hashToken(c.Value), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrSessionExpired
	}
	if err != nil {
		return nil, nil, err
	}
	return u, sess, nil
}

// logout ends the request's session, if any.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, u *store.User) error {
	c, err := r.Cookie(sessionCookie)
	if err == nil {
		sess, _, _ := s.db.AuthSessionByToken(r.Context(), hashToken(c.Value), s.now())
		if err := s.db.DeleteAuthSession(r.Context(), hashToken(c.Value)); err != nil {
			return err
		}
		if sess != nil {
			s.closeSession(sess.ID)
		}
	}
	http.SetCookie(w, s.cookie(sessionCookie, "", -1))
	s.audit(r.Context(), &u.ID, "logout", "user", fmt.Sprint(u.ID), clientIP(r), nil)
	return nil
}

func (s *Server) setSessionCookie(w http.ResponseWriter, token string) {
	c := s.cookie(sessionCookie, token, int(s.cfg.SessionTTL.Seconds()))
	c.SameSite = http.SameSiteLaxMode
	http.SetCookie(w, c)
}

func (s *Server) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteStrictMode,
	}
}

// loginCSRF returns the token a logged-out browser must send back with the
// login form, setting its cookie when it has none (double-submit cookie).
func (s *Server) loginCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) >= 20 {
		return c.Value
	}
	t := rand.Text()
	http.SetCookie(w, s.cookie(csrfCookie, t, int((12*time.Hour).Seconds())))
	return t
}

// checkCSRF verifies the token of a state-changing request: against the
// session for a logged-in browser, against the CSRF cookie for a login.
func checkCSRF(r *http.Request, sess *store.AuthSession) error {
	got := r.Header.Get(csrfHeader)
	if got == "" {
		got = r.PostFormValue(csrfField)
	}
	var want string
	if sess != nil {
		want = sess.CSRFToken
	} else if c, err := r.Cookie(csrfCookie); err == nil {
		want = c.Value
	}
	if got == "" || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return ErrCSRF
	}
	return nil
}

func (s *Server) audit(ctx context.Context, actor *int64, action, objType, objID, ip string, detail any) {
	d := "{}"
	if detail != nil {
		b, _ := json.Marshal(detail)
		d = string(b)
	}
	e := &store.AuditEvent{At: s.now(), ActorID: actor, Action: action, ObjectType: objType, ObjectID: objID, IP: ip, Detail: d}
	if err := s.db.Audit(ctx, e); err != nil {
		s.log.ErrorContext(ctx, "audit write failed", "action", action, "err", err)
	}
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// clientIP is the peer address of the request. Behind a load balancer it is
// the balancer's; trusting X-Forwarded-For needs a configured proxy list,
// which the cluster deployment adds.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
