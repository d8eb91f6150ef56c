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

	"github.com/examhall/examhall/exam/accounts"
	"github.com/examhall/examhall/store"
)

// Cookie names.
const (
	sessionCookie = "examhall_session"
	csrfCookie    = "examhall_csrf"
	csrfHeader    = "X-CSRF-Token"
	csrfField     = "csrf_token"
)

// Login delays: failed logins make the next try wait, longer with each
// failure in a 15-minute window, but nothing locks an account. The wait is
// kept for the account from one address (up to a minute) and for the
// account from anywhere (up to 5 s: all an outsider who knows a printed,
// sequential ticket number can impose on its candidate); an address with
// more than 50 failures (a room behind one NAT address makes some) waits a
// second between tries. An invigilator or admin can clear a candidate's
// waits (ClearLoginDelay).
const (
	loginWindow          = 15 * time.Minute
	freeFailures         = 3
	pairMaxWait          = time.Minute
	accountMaxWait       = 5 * time.Second
	addressFreeFailures  = 50
	addressWait          = time.Second
	failureCounterPrefix = "login-fail:"
	waitCounterPrefix    = "login-wait:"
)

// loginWait is how long the next try waits after n failures: nothing for
// the first three, then 1, 2, 4 ... seconds, at most max.
func loginWait(n int64, max time.Duration) time.Duration {
	if n <= freeFailures {
		return 0
	}
	return min(time.Second<<min(n-freeFailures-1, 16), max)
}

// loginKeys are the counters of an account's failures and waits.
type loginKeys struct{ pair, account, address string }

func (s *Server) loginKeys(ctx context.Context, name, ip string) (loginKeys, error) {
	name = strings.ToLower(name)
	// A cleared delay starts a new generation of the account's keys, so
	// waits from every address are forgotten at once.
	gen, _, err := s.counters.Peek(ctx, "login-gen:"+name)
	return loginKeys{pair: fmt.Sprintf("pair:%d:%s|%s", gen, name, ip), account: fmt.Sprintf("acct:%d:%s", gen, name), address: "ip:" + ip}, err
}

// ClearLoginDelay forgets a login name's failures and waits, from every
// address.
func (s *Server) ClearLoginDelay(ctx context.Context, name string) error {
	_, _, err := s.counters.Hit(ctx, "login-gen:"+strings.ToLower(name), 24*time.Hour)
	return err
}

// checkWait refuses a try while one of its waits runs.
func (s *Server) checkWait(ctx context.Context, k loginKeys) error {
	for _, key := range []string{k.pair, k.account, k.address} {
		n, left, err := s.counters.Peek(ctx, waitCounterPrefix+key)
		if err != nil {
			return err
		}
		if n > 0 {
			return &RateLimitedError{RetryAfter: left}
		}
	}
	return nil
}

// failed counts a failure and starts the waits it earns.
func (s *Server) failed(ctx context.Context, k loginKeys) error {
	for _, c := range []struct {
		key string
		max time.Duration
	}{{k.pair, pairMaxWait}, {k.account, accountMaxWait}, {k.address, 0}} {
		n, _, err := s.counters.Hit(ctx, failureCounterPrefix+c.key, loginWindow)
		if err != nil {
			return err
		}
		wait := loginWait(n, c.max)
		if c.key == k.address {
			wait = 0
			if n > addressFreeFailures {
				wait = addressWait
			}
		}
		if wait > 0 {
			if _, _, err := s.counters.Hit(ctx, waitCounterPrefix+c.key, wait); err != nil {
				return err
			}
		}
	}
	return nil
}

// homes is where each role lands after logging in.
var homes = map[store.Role]string{
	store.RoleCandidate:   "/candidate",
	store.RoleInvigilator: "/console",
	store.RoleReviewer:    "/review",
	store.RolePanel:       "/panel",
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
	keys, err := s.loginKeys(ctx, name, ip)
	if err != nil {
		return nil, nil, "", err
	}
	if err := s.checkWait(ctx, keys); err != nil {
		return nil, nil, "", err
	}

	u, err := s.findAccount(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, nil, "", err
	}
	if u == nil || !accounts.CheckPassword(u, password) {
		accounts.RefuseEvenly(u, password)
		var actor *int64
		if u != nil {
			actor = &u.ID
		}
		s.audit(ctx, actor, "login_failed", "account", name, ip, nil)
		if err := s.failed(ctx, keys); err != nil {
			return nil, nil, "", err
		}
		s.metrics.loginFailures.Inc()
		return nil, nil, "", ErrBadCredentials
	}
	if u.Disabled {
		return nil, nil, "", ErrAccountDisabled
	}
	for _, key := range []string{keys.pair, keys.account} {
		s.counters.Reset(ctx, failureCounterPrefix+key)
		s.counters.Reset(ctx, waitCounterPrefix+key)
	}
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
			// Other nodes close theirs; a lost message leaves them to the
			// session's expiry, as before.
			if b, err := json.Marshal(sess.ID); err == nil {
				if err := s.bus.Publish(r.Context(), LogoutTopic, b); err != nil {
					s.log.Warn("logout not announced to other nodes", "err", err)
				}
			}
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
	if ip := store.ClientIP(r.Context()); ip != "" {
		return ip
	}
	return remoteHost(r)
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// withClientIP finds each request's client address once: the connection's,
// or, when the connection comes from a trusted proxy, the last address in
// X-Forwarded-For that is not itself a trusted proxy. Without trusted
// proxies the header is never believed (anyone can send it).
func (s *Server) withClientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := forwardedFor(remoteHost(r), r.Header.Values("X-Forwarded-For"), s.trusted)
		next.ServeHTTP(w, r.WithContext(store.WithClientIP(r.Context(), ip)))
	})
}

// forwardedFor is the client behind peer: peer itself unless it is a
// trusted proxy, else the rightmost X-Forwarded-For hop that is not one
// (stopping at the first hop that is no address).
func forwardedFor(peer string, header []string, trusted func(string) bool) string {
	ip := peer
	if !trusted(peer) {
		return ip
	}
	hops := strings.Split(strings.Join(header, ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		if net.ParseIP(hop) == nil {
			break
		}
		ip = hop
		if !trusted(hop) {
			break
		}
	}
	return ip
}

// trusted says whether an address is one of the configured proxies.
func (s *Server) trusted(ip string) bool {
	addr := net.ParseIP(ip)
	for _, n := range s.cfg.TrustedProxies {
		if addr != nil && n.Contains(addr) {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
