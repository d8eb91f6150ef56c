// Package frontend is examhall's web layer: the HTTP server, logins and
// roles, CSRF protection, error replies, health and metrics endpoints, and
// the pages (embedded, so `go build` gives a complete server). Domain rules
// live in exam, proctor and media; handlers here parse, call and respond.
package frontend

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/i18n"
)

//go:embed static templates
var assets embed.FS

// Config is what the web layer needs from the program.
type Config struct {
	DB       *store.DB
	Bus      store.Bus
	Counters store.Counters
	Logger   *slog.Logger
	// Metrics is the registry /metrics serves; the server adds its own collectors.
	Metrics *prometheus.Registry
	// SecureCookies marks cookies Secure; set it when the public URL is https.
	SecureCookies bool
	// PublicHost is the host:port of the public URL, accepted as a websocket
	// origin besides the request's own host.
	PublicHost string
	// DataDir holds uploaded question images (bank-images/).
	DataDir string
	// PublicURL is where browsers (and phones) reach the server; empty: the
	// host a request came to.
	PublicURL string
	// SessionTTL is how long a login lasts (default 12 h: a lobby, a 120-minute
	// exam and any credited time fit in it with room to spare).
	SessionTTL time.Duration
	// RetentionDays is how long recordings are kept after a result is
	// final, as the exam rules tell candidates (default 90).
	RetentionDays int
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
	// FaceModels is the node_modules folder holding @vladmandic/human and
	// @tensorflow/tfjs-backend-wasm for the exam page's face analysis;
	// empty or missing: the page does not analyse faces.
	FaceModels string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed for the client's address (login delays, audit); empty: none.
	TrustedProxies []*net.IPNet
	// MetricsToken, when set, is the bearer token /metrics asks for; empty:
	// /metrics answers only requests from loopback that no proxy forwarded.
	MetricsToken string
	// BounceToken, when set, is the bearer token a mail provider's bounce
	// reports (POST /api/notify/bounces) carry; empty: none are taken.
	BounceToken string
	// Blobs, in a cluster, is the object storage every node keeps stills
	// in (recordings go there through the media service); nil: local disk.
	Blobs store.Blobs
	// Node is this server's place in a cluster: who owns each room. Nil:
	// a single node, owning every room.
	Node *store.Node
}

// Server serves every page and API of examhall.
type Server struct {
	cfg      Config
	db       *store.DB
	bus      store.Bus
	counters store.Counters
	log      *slog.Logger
	mux      *routeMux
	handler  http.Handler
	metrics  *serverMetrics
	pages    *pages
	sockets  []*Socket
	// The two sockets several domains add their messages to (MountAll
	// makes them first): the candidate's PC and the invigilator's console.
	examSocket, consoleSocket *Socket
	node                      *store.Node
	media                     *media.Service // set by MountAll
	// What the pages upload and read back, on this disk and, in a
	// cluster, in object storage: stills, identity stills, enrolled
	// photos, question images.
	stills, identity, photos, images *store.Files
	faceOn                           bool // the browser's face analysis is served
	voiceOn                          bool // the browser's voice detection is served
}

type serverMetrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	logins         *prometheus.CounterVec
	loginFailures  prometheus.Counter
	sockets        prometheus.Gauge
	socketMessages *prometheus.CounterVec
}

// New builds the server and its routes.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil || cfg.Bus == nil || cfg.Counters == nil || cfg.Metrics == nil {
		return nil, errors.New("frontend: DB, Bus, Counters and Metrics are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RetentionDays == 0 {
		cfg.RetentionDays = 90
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	if cfg.Node == nil {
		n, err := store.NewNode(store.NodeConfig{ID: "local", URL: cfg.PublicURL, Leases: store.NewMemLeases(cfg.Now), Logger: cfg.Logger, Now: cfg.Now})
		if err != nil {
			return nil, err
		}
		cfg.Node = n
	}
	pg, err := loadPages()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, db: cfg.DB, bus: cfg.Bus, counters: cfg.Counters, log: cfg.Logger, mux: &routeMux{ServeMux: http.NewServeMux()}, pages: pg, node: cfg.Node}
	files := func(dir string) *store.Files {
		return &store.Files{Dir: filepath.Join(cfg.DataDir, dir), Prefix: dir, Blobs: cfg.Blobs}
	}
	s.stills, s.identity, s.photos, s.images = files("stills"), files("identity"), files("photos"), files("bank-images")
	if err := s.registerMetrics(cfg.Metrics); err != nil {
		return nil, err
	}
	s.routes()
	s.mountFaceModels()

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, ErrCrossOrigin)
	}))
	s.handler = s.withClientIP(securityHeaders(cop.Handler(s.instrument(s.mux)), cfg.SecureCookies, s.node))
	return s, nil
}

// registerMetrics makes the web layer's metrics (requests, logins, sockets,
// rooms owned, the upload backlog) and registers them.
func (s *Server) registerMetrics(reg *prometheus.Registry) error {
	s.metrics = &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "examhall_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "examhall_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 10),
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "examhall_logins_total", Help: "Successful logins by role.",
		}, []string{"role"}),
		loginFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "examhall_login_failures_total", Help: "Failed logins (wrong or unknown credentials).",
		}),
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "examhall_websockets", Help: "Open device websockets.",
		}),
		socketMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "examhall_websocket_messages_total", Help: "Websocket messages received by type (malformed, unknown and too_large included).",
		}, []string{"type"}),
	}
	rooms := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "examhall_cluster_rooms", Help: "Rooms this node owns (their sockets, media and consoles run here)."},
		func() float64 { return float64(s.node.Rooms()) })
	waiting := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "examhall_files_upload_backlog", Help: "Stills, photos and images on this node's disk that object storage refused; retried every 10 s."},
		func() float64 {
			n := 0
			for _, f := range s.files() {
				n += f.Pending()
			}
			return float64(n)
		})
	for _, c := range []prometheus.Collector{rooms, waiting, s.metrics.requests, s.metrics.duration, s.metrics.logins, s.metrics.loginFailures, s.metrics.sockets, s.metrics.socketMessages} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// routeMux is the server's mux, keeping the patterns it was given so a
// test can walk every route (the authorization matrix).
type routeMux struct {
	*http.ServeMux
	mu       sync.Mutex
	patterns []string
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.mu.Lock()
	m.patterns = append(m.patterns, pattern)
	m.mu.Unlock()
	m.ServeMux.Handle(pattern, h)
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Routes lists every route pattern mounted so far, e.g. "GET /api/me".
func (s *Server) Routes() []string {
	s.mux.mu.Lock()
	defer s.mux.mu.Unlock()
	return slices.Clone(s.mux.patterns)
}

// Sockets lists every websocket path with the message types it handles,
// sorted, so a test can ask each one for its access decision.
func (s *Server) Sockets() map[string][]string {
	out := map[string][]string{}
	for _, sk := range s.sockets {
		out[sk.path] = slices.Sorted(maps.Keys(sk.handlers))
	}
	return out
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) now() time.Time { return s.cfg.Now().UTC() }

func (s *Server) routes() {
	static, _ := fs.Sub(assets, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	s.mux.HandleFunc("GET /static/i18n.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", dictionaryTag)
		if r.Header.Get("If-None-Match") == dictionaryTag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write(i18n.JSON())
	})
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.handleReady)
	s.mux.Handle("GET /metrics", s.metricsGuard(promhttp.HandlerFor(s.cfg.Metrics, promhttp.HandlerOpts{Registry: s.cfg.Metrics})))

	s.mux.HandleFunc("GET /{$}", s.handleRoot)
	s.mux.HandleFunc("GET /login", s.handleLoginPage)
	s.mux.HandleFunc("POST /login", s.handleLoginForm)
	s.mux.Handle("POST /logout", s.page(nil, s.handleLogoutForm))
	s.mux.Handle("GET /exam", s.page([]store.Role{store.RoleCandidate}, s.handleExamPage))
	s.mux.Handle("GET /console", s.page([]store.Role{store.RoleInvigilator, store.RoleAdmin}, s.handleConsolePage))
	// The console and the panel page are their own pages (the panel's is
	// mounted with the certificate programme).
	for role, path := range homes {
		if role != store.RoleInvigilator && role != store.RolePanel {
			s.mux.Handle("GET "+path, s.page([]store.Role{role}, s.handleHome))
		}
	}

	s.mountImages()
	s.mux.HandleFunc("GET /api/csrf", s.handleCSRF)
	s.mux.HandleFunc("POST /api/login", s.handleLoginAPI)
	s.mux.Handle("POST /api/logout", s.api(nil, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		if err := s.logout(w, r, a.User); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
		return nil
	}))
	s.mux.Handle("GET /api/me", s.api(nil, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		writeJSON(w, http.StatusOK, meReply(a))
		return nil
	}))
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, store.ErrNotFound)
	})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, code := map[string]string{"database": "ok", "bus": "ok", "node": "ok"}, http.StatusOK
	if s.node.Draining() {
		// A draining node takes no new rooms: the balancer sends elsewhere.
		status["node"], code = "draining", http.StatusServiceUnavailable
	}
	// The part's name only: the error (hosts, users) goes to the log.
	if err := s.db.Ping(ctx); err != nil {
		s.log.Warn("not ready", "part", "database", "err", err)
		status["database"], code = "unavailable", http.StatusServiceUnavailable
	}
	if err := s.bus.Ping(ctx); err != nil {
		s.log.Warn("not ready", "part", "bus", "err", err)
		status["bus"], code = "unavailable", http.StatusServiceUnavailable
	}
	writeJSON(w, code, status)
}

// metricsGuard lets Prometheus in with the bearer token when one is set,
// else only requests from this machine that no proxy forwarded: the
// figures (logins by role, sockets) are for operators.
func (s *Server) metricsGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tok := s.cfg.MetricsToken; tok != "" {
			got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
				s.writeError(w, r, ErrUnauthenticated)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("Forwarded") != "" {
			s.writeError(w, r, ErrForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Auth is the logged-in account of a request.
type Auth struct {
	User    *store.User
	Session *store.AuthSession
}

// APIHandler handles an authenticated API request; a returned error becomes
// the JSON error reply.
type APIHandler func(w http.ResponseWriter, r *http.Request, a *Auth) error

// api guards an API handler: the caller must be logged in with one of roles
// (any role when nil), and a state-changing request must carry the CSRF token.
func (s *Server) api(roles []store.Role, h APIHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, err := s.guard(r, roles)
		if err == nil {
			err = h(w, r, a)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) guard(r *http.Request, roles []store.Role) (*Auth, error) {
	u, sess, err := s.authenticate(r)
	if err != nil {
		return nil, err
	}
	if !allowed(u.Role, roles) {
		return nil, ErrForbidden
	}
	if unsafeMethod(r.Method) {
		r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
		if err := checkCSRF(r, sess); err != nil {
			return nil, err
		}
	}
	return &Auth{User: u, Session: sess}, nil
}

func allowed(role store.Role, roles []store.Role) bool {
	if roles == nil {
		return true
	}
	for _, r := range roles {
		if r == role {
			return true
		}
	}
	return false
}

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// statusWriter remembers the status code for the metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int)        { w.code = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack lets websocket upgrades through the metrics wrapper.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.code = http.StatusSwitchingProtocols
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// securityHeaders sets the headers of every reply. A page may open
// sockets on this server and on the other live nodes of its cluster (a
// room's socket is sent to its owner's URL).
func securityHeaders(next http.Handler, https bool, node *store.Node) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		connect := "'self'"
		for _, o := range node.Origins() {
			connect += " " + strings.Replace(strings.Replace(o, "https://", "wss://", 1), "http://", "ws://", 1)
		}
		h := w.Header()
		// Served over https (here or by a proxy in front): browsers keep
		// to https for a year.
		if https || r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "+
			"connect-src "+connect+"; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		next.ServeHTTP(w, r)
	})
}

// staticHandler serves the pages' scripts, styles and images. Each file
// carries an ETag made from its content and is revalidated on every use
// (no-cache): an unchanged file costs a 304, and a new release is never
// met by a cached old script.
func staticHandler(fsys fs.FS) http.Handler {
	tags := map[string]string{}
	fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := fs.ReadFile(fsys, name); err == nil {
				tags[name] = contentTag(b)
			}
		}
		return nil
	})
	fileServer := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// No listings of folders.
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		if tag, ok := tags[r.URL.Path]; ok {
			w.Header().Set("ETag", tag)
		}
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}

// dictionaryTag is the ETag of the dictionary the pages load.
var dictionaryTag = contentTag(i18n.JSON())

// contentTag is a strong ETag naming b's content.
func contentTag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}
