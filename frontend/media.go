package frontend

import (
	"context"
	"encoding/json"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/media"
)

// MountMedia adds WebRTC signaling to the candidate's exam socket: the PC
// page publishes its camera and microphone to the media service.
func (s *Server) MountMedia(svc *media.Service) {
	for _, sk := range s.sockets {
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
