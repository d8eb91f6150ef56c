package frontend

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/store"
)

type viewerKey struct{}

// mountMedia adds WebRTC signaling to the candidate's exam socket (the PC
// page publishes its camera and microphone) and to the console socket (the
// console receives its candidates' cameras).
func (s *Server) mountMedia(svc *media.Service, engine *exam.Engine) {
	s.mountPhone(svc, engine)
	s.mountViewer(s.consoleSocket, svc)
	s.mountPublish(svc, engine)
}

// mountPhone serves the phone's socket, /ws/phone: opened with a pairing
// link's token (once) or the device key the phone got when pairing.
func (s *Server) mountPhone(svc *media.Service, engine *exam.Engine) {
	sk := s.PublicSocket("/ws/phone")
	// The phone meets its PC page on the room's owner; the pairing link is
	// used up there, not on a node that only redirects.
	sk.Route(func(ctx context.Context, c *Conn, r *http.Request) (string, error) {
		q := r.URL.Query()
		attempt, err := svc.PhoneAttempt(ctx, q.Get("t"), q.Get("key"), s.now())
		if err != nil {
			return "", err
		}
		return engine.Room(ctx, 0, attempt)
	})
	sk.OnOpen(func(ctx context.Context, c *Conn, r *http.Request) error {
		q := r.URL.Query()
		if t := q.Get("t"); t != "" {
			attempt, key, err := svc.Redeem(ctx, t, s.now())
			if err != nil {
				return err
			}
			c.Set(phoneKey{}, attempt)
			c.Set(deviceKey{}, key)
			return nil
		}
		attempt, err := svc.Device(ctx, q.Get("key"))
		if err != nil {
			return err
		}
		c.Set(phoneKey{}, attempt)
		return nil
	})
	sk.OnReady(func(c *Conn) {
		if key, ok := c.Value(deviceKey{}).(string); ok {
			c.Send(map[string]any{"type": "paired", "device_key": key})
		}
	})
	publishHandlers(sk, svc, engine, media.Phone, func(c *Conn) int64 { return c.Value(phoneKey{}).(int64) })
	s.mux.HandleFunc("GET /phone", func(w http.ResponseWriter, r *http.Request) {
		s.render(w, r, s.pages.phone, http.StatusOK, &pageData{Title: T("phone.title")})
	})
}

type (
	baseKey   struct{}
	phoneKey  struct{}
	deviceKey struct{}
)

// baseURL is where a phone reaches this server: the public URL when set,
// else the host the PC page used.
func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return s.cfg.PublicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// viewerHandlers handle a viewer's answer and candidates on a socket.
func (s *Server) viewerHandlers(sk *Socket) {
	sk.HandleLarge("view_answer", MaxSDPMessage, func(ctx context.Context, c *Conn, m *Inbound) error {
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

func (s *Server) mountViewer(sk *Socket, svc *media.Service) {
	sk.Handle("view", func(ctx context.Context, c *Conn, m *Inbound) error {
		async(c, m, func() error {
			if old, ok := c.Value(viewerKey{}).(*media.Viewer); ok {
				go old.Close()
			}
			v, err := svc.View(func(msg any) { c.Send(msg) })
			if err != nil {
				return err
			}
			c.Set(viewerKey{}, v)
			c.Send(map[string]any{"type": "view_ready", "id": m.ID, "ice_servers": svc.ICEServers()})
			if focus, ok := c.Value(focusKey{}).(int64); ok {
				v.Focus(focus)
			}
			if ids, ok := c.Value(attemptsKey{}).([]int64); ok {
				v.Allow(ids)
			}
			return nil
		})
		return nil
	})
	// The console shows one candidate at full quality, the rest small.
	sk.Handle("view_focus", func(ctx context.Context, c *Conn, m *Inbound) error {
		focus, err := parseFocus(m.Raw)
		if err != nil {
			return err
		}
		// Only a candidate this console watches (its last snapshot) may be
		// opened; another room's attempt is not found, as over HTTP.
		ids, _ := c.Value(attemptsKey{}).([]int64)
		if focus != 0 && !slices.Contains(ids, focus) {
			return store.ErrNotFound
		}
		c.Set(focusKey{}, focus)
		if v, ok := c.Value(viewerKey{}).(*media.Viewer); ok {
			v.Focus(focus)
		}
		if m.ID != nil {
			return c.Send(map[string]any{"type": "ack", "id": m.ID})
		}
		return nil
	})
	s.viewerHandlers(sk)
}

// parseFocus reads a view_focus message: the attempt to show large, 0 for
// none.
func parseFocus(raw []byte) (int64, error) {
	var req struct {
		AttemptID *int64 `json:"attempt_id"`
	}
	if err := json.Unmarshal(raw, &req); err != nil || req.AttemptID == nil || *req.AttemptID < 0 {
		return 0, ErrBadRequest
	}
	return *req.AttemptID, nil
}

// focusKey holds the attempt a console has opened large.
type focusKey struct{}

// publishHandlers let a device publish its camera over its socket:
// media_config (with its exam's cap on the camera), media_offer and
// trickled media_ice.
func publishHandlers(sk *Socket, svc *media.Service, engine *exam.Engine, device string, attemptOf func(*Conn) int64) {
	sk.Handle("media_config", func(ctx context.Context, c *Conn, m *Inbound) error {
		vc, err := engine.VideoCapOf(ctx, attemptOf(c), device)
		if err != nil {
			return err
		}
		return c.Send(map[string]any{"type": "media_config", "id": m.ID, "ice_servers": svc.ICEServers(), "video": vc})
	})
	sk.HandleLarge("media_offer", MaxSDPMessage, func(ctx context.Context, c *Conn, m *Inbound) error {
		var req struct {
			SDP string `json:"sdp"`
		}
		if err := json.Unmarshal(m.Raw, &req); err != nil {
			return ErrBadRequest
		}
		// WebRTC set-up takes a while; the socket keeps serving answers
		// meanwhile. Candidates that arrive before it is done wait for it.
		done := make(chan struct{})
		c.Set(offerKey{}, done)
		async(c, m, func() error {
			defer close(done)
			answer, err := svc.Publish(ctx, attemptOf(c), device, req.SDP, func(cand map[string]any) {
				c.Send(map[string]any{"type": "media_ice", "candidate": cand})
			})
			if err != nil {
				return err
			}
			return c.Send(map[string]any{"type": "media_answer", "id": m.ID, "sdp": answer})
		})
		return nil
	})
	sk.Handle("media_ice", func(ctx context.Context, c *Conn, m *Inbound) error {
		var req struct {
			Candidate map[string]any `json:"candidate"`
		}
		if err := json.Unmarshal(m.Raw, &req); err != nil || req.Candidate == nil {
			return ErrBadRequest
		}
		add := func() error { return svc.AddICECandidate(attemptOf(c), device, req.Candidate) }
		if done, ok := c.Value(offerKey{}).(chan struct{}); ok {
			select {
			case <-done:
			default:
				// The offer is still being answered: add the candidate to
				// its connection (not an older one, not nowhere) after.
				async(c, m, func() error { <-done; return add() })
				return nil
			}
		}
		return add()
	})
}

// offerKey holds a channel closed when the socket's latest offer is answered.
type offerKey struct{}

// async runs a slow handler (WebRTC set-up) beside the socket's reader, so
// answers and other messages are not held up; its error is sent as the
// reply to m.
func async(c *Conn, m *Inbound, f func() error) {
	go func() {
		if err := f(); err != nil {
			c.ReplyError(m, err)
		}
	}()
}

// mountPublish lets the candidate's PC page pair its phone, see the
// phone's camera and publish its own on its exam socket.
func (s *Server) mountPublish(svc *media.Service, engine *exam.Engine) {
	sk := s.examSocket
	sk.OnOpen(func(ctx context.Context, c *Conn, r *http.Request) error {
		c.Set(baseKey{}, s.baseURL(r))
		return nil
	})
	sk.Handle("pair", func(ctx context.Context, c *Conn, m *Inbound) error {
		link, qr, err := svc.Pair(ctx, exam.AttemptOf(c), c.Value(baseKey{}).(string), s.now())
		if err != nil {
			return err
		}
		return c.Send(map[string]any{"type": "pair", "id": m.ID, "url": link, "qr": qr, "expires_in": int(media.PairingTTL.Seconds())})
	})
	sk.Handle("phone_view", func(ctx context.Context, c *Conn, m *Inbound) error {
		async(c, m, func() error {
			if old, ok := c.Value(viewerKey{}).(*media.Viewer); ok {
				go old.Close()
			}
			v, err := svc.ViewDevice(media.Phone, func(msg any) { c.Send(msg) })
			if err != nil {
				return err
			}
			c.Set(viewerKey{}, v)
			c.Send(map[string]any{"type": "view_ready", "id": m.ID, "ice_servers": svc.ICEServers()})
			v.Allow([]int64{exam.AttemptOf(c)})
			return nil
		})
		return nil
	})
	s.viewerHandlers(sk)
	publishHandlers(sk, svc, engine, media.PC, func(c *Conn) int64 { return exam.AttemptOf(c) })
}
