// Package app wires one examhall node from its backends: the exam engine,
// the proctor, the media service, the certificate service and the web
// layer, started in the order they depend on each other and stopped in the
// order that loses nothing. The binary (cmd/examhall) and the whole-system
// tests (cmd/examhall/e2e) are built on it, so the tests run what ships.
package app

import (
	"context"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/exam/notify"
	"github.com/examhall/examhall/frontend"
	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

// Config is a node's backends and each service's own options. Start fills
// the shared fields (database, bus, logger, node, metrics, data directory,
// object storage) into every service's config and wires the services to
// each other; what else a service's config holds is passed on as it is.
type Config struct {
	DB       *store.DB
	Bus      store.Bus
	Counters store.Counters
	Blobs    store.Blobs
	Node     *store.Node
	Logger   *slog.Logger
	// Metrics collects every service's metrics; nil: a registry of its own.
	Metrics *prometheus.Registry
	DataDir string

	Exam    exam.Config
	Proctor proctor.Config
	Media   media.Config
	Certify certify.Config
	Web     frontend.Config
	// Notify sends the outbox's messages; its BaseURL is the site's.
	Notify notify.Config
}

// App is one running node.
type App struct {
	Engine  *exam.Engine
	Proctor *proctor.Service
	Media   *media.Service
	Certify *certify.Service
	Web     *frontend.Server

	log      *slog.Logger
	stop     context.CancelFunc
	stopped  []chan struct{}
	stopOnce sync.Once
}

// Start starts a node's services and mounts them on its web layer. They
// run until Close, not until ctx ends: the engine must commit what it has
// taken after a signal has asked the process to stop.
func Start(ctx context.Context, cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a := &App{log: cfg.Logger, stop: stop}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()

	e := cfg.Exam
	e.DB, e.Bus, e.Logger, e.Node = cfg.DB, cfg.Bus, cfg.Logger, cfg.Node
	a.Engine = exam.New(e)
	a.run(func() error { a.Engine.Run(runCtx); return nil }, "engine")

	p := cfg.Proctor
	p.DB, p.Bus, p.Logger, p.Metrics = cfg.DB, cfg.Bus, cfg.Logger, cfg.Metrics
	p.Terminator, p.Admitter = a.Engine, a.Engine
	var err error
	if a.Proctor, err = proctor.New(p); err != nil {
		return nil, err
	}
	a.run(func() error { return a.Proctor.Run(runCtx) }, "proctor")

	if err := a.startMedia(ctx, cfg); err != nil {
		return nil, err
	}

	n := cfg.Notify
	n.DB, n.Logger, n.Metrics = cfg.DB, cfg.Logger, cfg.Metrics
	sender := notify.New(n)
	a.run(func() error { return sender.Run(runCtx) }, "notification sender")

	c := cfg.Certify
	c.DB, c.DataDir = cfg.DB, cfg.DataDir
	a.Certify = certify.New(c)

	w := cfg.Web
	w.DB, w.Bus, w.Counters, w.Logger, w.Metrics = cfg.DB, cfg.Bus, cfg.Counters, cfg.Logger, cfg.Metrics
	w.DataDir, w.Blobs, w.Node = cfg.DataDir, cfg.Blobs, cfg.Node
	if a.Web, err = frontend.New(w); err != nil {
		return nil, err
	}
	if err := a.Web.MountAll(runCtx, frontend.Services{Engine: a.Engine, Proctor: a.Proctor, Media: a.Media, Certify: a.Certify}); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// startMedia starts the media service and repairs the recordings a crash
// left open, so they play.
func (a *App) startMedia(ctx context.Context, cfg Config) error {
	m := cfg.Media
	m.DB, m.Bus, m.Logger, m.Metrics = cfg.DB, cfg.Bus, cfg.Logger, cfg.Metrics
	m.DataDir, m.Blobs = cfg.DataDir, cfg.Blobs
	if cfg.Node != nil {
		m.NodeID = cfg.Node.ID()
	}
	var err error
	if a.Media, err = media.New(m); err != nil {
		return err
	}
	if n, err := a.Media.RepairAll(ctx); err != nil {
		a.log.Warn("repairing recordings left open", "err", err)
	} else if n > 0 {
		a.log.Info("recordings left open by a crash were repaired", "count", n)
	}
	return nil
}

// run runs a service's loop until Close.
func (a *App) run(loop func() error, name string) {
	done := make(chan struct{})
	a.stopped = append(a.stopped, done)
	go func() {
		defer close(done)
		if err := loop(); err != nil {
			a.log.Error(name+" stopped", "err", err)
		}
	}()
}

// Close stops the node: the sockets close, the recordings get their seek
// index, the proctor finishes the signal in hand and the engine commits
// every answer already received. It is safe to call more than once.
func (a *App) Close() {
	a.stopOnce.Do(func() {
		if a.Web != nil {
			a.Web.CloseSockets()
		}
		if a.Media != nil {
			a.Media.Close()
		}
		a.stop()
		for _, done := range a.stopped {
			<-done
		}
	})
}
