package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only on --debug-addr, a loopback address
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/crypto/acme/autocert"

	"github.com/examhall/examhall/cmd/examhall/internal/app"
	"github.com/examhall/examhall/exam/notify"
	"github.com/examhall/examhall/frontend"
	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/store"
)

const usage = `examhall — online proctored exams

Usage:
  examhall serve   [flags]   run the platform
  examhall demo    [flags]   seed the demo programme (once) and run the platform
  examhall migrate [flags]   apply database migrations and exit
  examhall verify-attempt [flags] ID
                             check an attempt's hash-chained log and replay it
                             to the same answers and score
  examhall retention [--days 90] [--apply] [flags]
                             list (or delete) recordings past the retention
                             period after the attempt's final result
  examhall loadgen exam [flags]
                             drive demo candidates over real websockets
                             against a running server (loopback only)
  examhall drain --node-id N [--redis URL]
                             tell a node of a cluster to move its rooms to the
                             other nodes and stop
  examhall version           print the schema version this binary knows

Run "examhall serve -h" for the flags; each is also an EXAMHALL_* variable.
`

func runCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve", "demo", "migrate":
	case "drain":
		return drainCommand(ctx, rest, stdout, stderr)
	case "verify-attempt":
		return verifyAttempt(ctx, rest, stdout, stderr)
	case "loadgen":
		return loadgenCommand(ctx, rest, stdout, stderr)
	case "retention":
		return retention(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "examhall, schema", store.SchemaVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
	cfg, err := parseConfig(cmd, rest, os.Getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	switch cmd {
	case "migrate":
		db, err := openStore(ctx, cfg, log)
		if err != nil {
			return err
		}
		db.Close()
		fmt.Fprintln(stdout, "schema is at", store.SchemaVersion())
		return nil
	case "demo":
		return serve(ctx, cfg, log, stdout, seedDemo)
	}
	return serve(ctx, cfg, log, stdout, nil)
}

func newLogger(cfg *Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func openStore(ctx context.Context, cfg *Config, log *slog.Logger) (*store.DB, error) {
	// The data dir holds recordings and demo.json even when the database
	// is PostgreSQL.
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	db, err := store.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", db.Location, err)
	}
	log.Info("database ready", "dialect", db.Dialect, "where", db.Location, "schema", store.SchemaVersion())
	return db, nil
}

// seeder prepares data before the server starts listening and reports to the
// user once it is listening at url.
type seeder func(ctx context.Context, cfg *Config, db *store.DB, log *slog.Logger) (announce func(url string, out io.Writer) error, err error)

// serve wires the program in order (store → bus → web) and, when ctx is
// cancelled by SIGTERM or SIGINT, stops it in reverse within the shutdown
// timeout: in-flight requests finish, then the bus and database close.
func serve(ctx context.Context, cfg *Config, log *slog.Logger, stdout io.Writer, seed seeder) error {
	b, err := openBackends(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer b.close()
	db, bus := b.db, b.bus

	var announce func(string, io.Writer) error
	if seed != nil {
		if announce, err = seed(ctx, cfg, db, log); err != nil {
			return fmt.Errorf("seed demo: %w", err)
		}
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another examhall running? choose another port with --addr)", cfg.Addr, err)
	}
	defer ln.Close()
	a, node, err := startNode(ctx, cfg, b, log, ln.Addr())
	if err != nil {
		return err
	}
	// Closing commits every answer already received before the database
	// closes.
	defer a.Close()
	web := a.Web

	srv, err := newHTTPServer(ctx, cfg, log, web)
	if err != nil {
		return err
	}
	url := cfg.publicURL(ln.Addr())
	served := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			served <- srv.ServeTLS(ln, "", "")
			return
		}
		served <- srv.Serve(ln)
	}()
	log.Info("examhall is listening", "addr", ln.Addr().String(), "url", url)
	if announce != nil {
		if err := announce(url, stdout); err != nil {
			srv.Close()
			return err
		}
	}

	// Stopped by SIGTERM or SIGINT (ctx), or by examhall drain naming
	// this node.
	stop, drain := context.WithCancel(ctx)
	defer drain()
	if err := followDrain(stop, bus, cfg.NodeID, log, drain); err != nil {
		return err
	}
	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-stop.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Rooms move first: their devices reconnect to other nodes of the
	// cluster while this one finishes its requests.
	node.Drain(sctx)
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests still running at the shutdown deadline were cut", "err", err)
		srv.Close()
	}
	a.Close()
	log.Info("stopped")
	return nil
}

// startNode starts this node's services on the backends, with its identity
// in the cluster and its metrics.
func startNode(ctx context.Context, cfg *Config, b *backends, log *slog.Logger, addr net.Addr) (*app.App, *store.Node, error) {
	// The node's load counts the media tracks once media has started (the
	// node's first heartbeat comes before).
	var av atomic.Pointer[media.Service]
	cpu := &cpuMeter{}
	load := func() (float64, int) {
		if m := av.Load(); m != nil {
			return cpu.cores(), m.Tracks()
		}
		return cpu.cores(), 0
	}
	node, err := store.NewNode(store.NodeConfig{ID: cfg.NodeID, URL: cfg.nodeURL(addr), Leases: b.leases, Logger: log, Load: load})
	if err != nil {
		return nil, nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sender, err := cfg.notifyConfig(addr)
	if err != nil {
		return nil, nil, err
	}
	a, err := app.Start(ctx, app.Config{DB: b.db, Bus: b.bus, Counters: b.counters, Blobs: b.blobs, Node: node, Logger: log, Metrics: reg, DataDir: cfg.DataDir,
		Media: media.Config{RollEvery: cfg.RecordingSegment, ICEServers: cfg.ICEServers, UDPPort: cfg.ICEUDPPort, PublicIP: cfg.ICEPublicIP,
			LoopbackOnly: cfg.ICELoopback, FaceCheck: cfg.FaceCheck, FaceEvery: cfg.FaceEvery},
		Web: frontend.Config{
			SecureCookies:  cfg.https() || strings.HasPrefix(cfg.PublicURL, "https://"),
			PublicHost:     publicHost(cfg.PublicURL),
			PublicURL:      cfg.PublicURL,
			FaceModels:     cfg.FaceModels,
			MetricsToken:   cfg.MetricsToken,
			TrustedProxies: cfg.TrustedProxies,
			BounceToken:    cfg.BounceToken,
		},
		Notify: sender})
	if err != nil {
		return nil, nil, err
	}
	av.Store(a.Media)
	return a, node, nil
}

// notifyConfig is how notifications leave this node: mail by --smtp-url
// (without it, written to <data-dir>/mail/ as .eml files, for a demo or a
// trial), text messages by --sms-url (without it, logged); their links
// point at the public URL.
func (c *Config) notifyConfig(addr net.Addr) (notify.Config, error) {
	n := notify.Config{BaseURL: c.publicURL(addr), Rate: c.MailRate}
	if c.SMTPURL != "" {
		m, err := notify.NewSMTP(c.SMTPURL, c.SMTPPassword)
		if err != nil {
			return n, fmt.Errorf("--smtp-url: %w", err)
		}
		n.Mail = m
	} else {
		n.Mail = notify.DirMailer{Dir: filepath.Join(c.DataDir, "mail")}
	}
	if c.SMSURL != "" {
		n.SMS = &notify.HTTPSMS{URL: c.SMSURL, Token: c.SMSToken}
	}
	return n, nil
}

// newHTTPServer is the server of the pages, APIs and sockets, with https
// when configured; it also starts the profiler on --debug-addr.
func newHTTPServer(ctx context.Context, cfg *Config, log *slog.Logger, h http.Handler) (*http.Server, error) {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if cfg.DebugAddr != "" {
		go func() {
			dbg := &http.Server{Addr: cfg.DebugAddr, Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
			log.Info("profiler listening", "addr", cfg.DebugAddr)
			if err := dbg.ListenAndServe(); err != nil {
				log.Warn("profiler", "err", err)
			}
		}()
	}
	var err error
	srv.TLSConfig, err = cfg.tlsConfig()
	return srv, err
}

// tlsConfig is the https set-up, or nil for plain http: a certificate from
// files (checked now, so a wrong path fails at start), or Let's Encrypt's
// for the ACME domains, cached under the data dir.
func (c *Config) tlsConfig() (*tls.Config, error) {
	switch {
	case c.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	case len(c.ACMEDomains) > 0:
		m := &autocert.Manager{Prompt: autocert.AcceptTOS, HostPolicy: autocert.HostWhitelist(c.ACMEDomains...),
			Cache: autocert.DirCache(filepath.Join(c.DataDir, "acme"))}
		tc := m.TLSConfig()
		tc.MinVersion = tls.VersionTLS12
		return tc, nil
	}
	return nil, nil
}

func publicHost(publicURL string) string {
	if u, err := url.Parse(publicURL); err == nil {
		return u.Host
	}
	return ""
}
