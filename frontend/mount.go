package frontend

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

// Services are the domains the web layer serves.
type Services struct {
	Engine  *exam.Engine
	Proctor *proctor.Service
	Media   *media.Service
	Certify *certify.Service
}

// MountAll puts every domain on the web: routes, sockets and the messages
// each socket carries. The binary and the tests both call it, so they serve
// the same thing. What it follows on the bus (messages for candidates,
// logouts on other nodes) it follows until ctx ends.
func (s *Server) MountAll(ctx context.Context, svc Services) error {
	s.media = svc.Media
	// The sockets come first: each domain adds its messages to them.
	s.examSocket = s.Socket("/ws/exam", []store.Role{store.RoleCandidate})
	s.consoleSocket = s.Socket("/ws/console", []store.Role{store.RoleInvigilator, store.RoleAdmin})
	s.mountExam(svc.Engine)
	if err := s.mountProctor(ctx, svc.Proctor, svc.Engine); err != nil {
		return err
	}
	s.mountMedia(svc.Media, svc.Engine)
	if err := s.mountCertify(svc.Certify); err != nil {
		return err
	}
	s.mountJourney(svc.Engine, svc.Media, svc.Proctor)
	s.mountCluster()
	s.mountNotify(svc.Engine)
	if err := s.followLogouts(ctx); err != nil {
		return err
	}
	// The node beats and renews its rooms' leases until ctx ends; a room it
	// loses has its sockets closed, and they reconnect to the new owner.
	s.node.OnLost(s.closeRoom)
	if err := s.node.Start(ctx); err != nil {
		return fmt.Errorf("join the cluster: %w", err)
	}
	go s.node.Run(ctx)
	go s.retryUploads(ctx)
	return nil
}

// retryUploads sends, every 10 s, the files (stills, photos, images) that
// object storage refused when they were written; they wait on this disk.
func (s *Server) retryUploads(ctx context.Context) {
	if s.cfg.Blobs == nil {
		return
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, f := range s.files() {
			if left, err := f.RetryPending(ctx); err != nil {
				s.log.Warn("files wait for object storage", "dir", f.Prefix, "left", left, "err", err)
			}
		}
	}
}

// files are the kinds of file the server keeps.
func (s *Server) files() []*store.Files {
	return []*store.Files{s.stills, s.identity, s.photos, s.images}
}

// Node is the server's place in its cluster.
func (s *Server) Node() *store.Node { return s.node }

// LogoutTopic carries the session ids of logouts, so every node closes the
// sockets opened with them.
const LogoutTopic = "auth.logouts"

// followLogouts closes this node's sockets of a session logged out on any
// node.
func (s *Server) followLogouts(ctx context.Context) error {
	sub, err := s.bus.Subscribe(ctx, LogoutTopic)
	if err != nil {
		return err
	}
	go func() {
		for m := range sub.C {
			var id int64
			if json.Unmarshal(m.Data, &id) == nil {
				s.closeSession(id)
			}
		}
	}()
	go func() { <-ctx.Done(); sub.Close() }()
	return nil
}
