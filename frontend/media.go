package frontend

import (
	"context"
	"encoding/json"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/media"
)

type viewerKey struct{}

// MountMedia adds WebRTC signaling to the candidate's exam socket (the PC
// page publishes its camera and microphone) and to the console socket (the
// console receives its candidates' cameras). Call after MountProctor.
func (s *Server) MountMedia(svc *media.Service) {
	for _, sk := range s.sockets {
		if sk.path == "/ws/console" {
			s.mountViewer(sk, svc)
		}
		if sk.path != "/ws/exam" {
			continue
		}
		sk.Handle("media_config", func(ctx context.Context, c *Conn, m *Inbound) error {
			return c.Send(map[string]any{"type": "media_config", "id": m.ID, "ice_servers": svc.ICEServers()})
		})
		sk.Handle("media_offer", func(ctx context.Context, c *Conn, m *Inbound) error {
			var req struct {
				SDP string `json:"sdp"`
			}
			if err := json.Unmarshal(m.Raw, &req); err != nil {
				return ErrBadRequest
			}
			answer, err := svc.Publish(ctx, exam.AttemptOf(c), media.PC, req.SDP, func(cand map[string]any) {
				c.Send(map[string]any{"type": "media_ice", "candidate": cand})
			})
			if err != nil {
				return err
			}
			return c.Send(map[string]any{"type": "media_answer", "id": m.ID, "sdp": answer})
		})
		sk.Handle("media_ice", func(ctx context.Context, c *Conn, m *Inbound) error {
			var req struct {
				Candidate map[string]any `json:"candidate"`
			}
			if err := json.Unmarshal(m.Raw, &req); err != nil || req.Candidate == nil {
				return ErrBadRequest
			}
			return svc.AddICECandidate(exam.AttemptOf(c), media.PC, req.Candidate)
		})
	}
}

func (s *Server) mountViewer(sk *Socket, svc *media.Service) {
	sk.Handle("view", func(ctx context.Context, c *Conn, m *Inbound) error {
		if old, ok := c.Value(viewerKey{}).(*media.Viewer); ok {
			old.Close()
		}
		v, err := svc.View(func(msg any) { c.Send(msg) })
		if err != nil {
			return err
		}
		c.Set(viewerKey{}, v)
		c.Send(map[string]any{"type": "view_ready", "id": m.ID, "ice_servers": svc.ICEServers()})
		if ids, ok := c.Value(attemptsKey{}).([]int64); ok {
			v.Allow(ids)
		}
		return nil
	})
	sk.Handle("view_answer", func(ctx context.Context, c *Conn, m *Inbound) error {
		var req struct {
			SDP string `json:"sdp"`
		}
		v, ok := c.Value(viewerKey{}).(*media.Viewer)
		if json.Unmarshal(m.Raw, &req) != nil || !ok {
			return ErrBadRequest
		}
		return v.Answer(req.SDP)
	})
	sk.Handle("view_ice", func(ctx context.Context, c *Conn, m *Inbound) error {
		var req struct {
			Candidate map[string]any `json:"candidate"`
		}
		v, ok := c.Value(viewerKey{}).(*media.Viewer)
		if json.Unmarshal(m.Raw, &req) != nil || !ok || req.Candidate == nil {
			return ErrBadRequest
		}
		return v.AddICECandidate(req.Candidate)
	})
	sk.OnClose(func(c *Conn) {
		if v, ok := c.Value(viewerKey{}).(*media.Viewer); ok {
			v.Close()
		}
	})
}
