package frontend

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

// mountProctor puts proctoring on the web: signals and acknowledgements on
// the candidate's exam socket, the invigilator's console socket and API,
// and room assignment for admins.
func (s *Server) mountProctor(ctx context.Context, svc *proctor.Service, engine *exam.Engine) error {
	// Candidate side: the page reports signals and acknowledges messages.
	s.mountSignals(svc)
	// Messages for candidates reach the node that holds their socket.
	sub, err := s.bus.Subscribe(ctx, proctor.CandidateTopic)
	if err != nil {
		return err
	}
	go func() {
		for m := range sub.C {
			var cm struct {
				AttemptID int64           `json:"attempt_id"`
				Payload   json.RawMessage `json:"payload"`
			}
			if json.Unmarshal(m.Data, &cm) == nil {
				engine.Push(cm.AttemptID, cm.Payload)
			}
		}
	}()
	go func() { <-ctx.Done(); sub.Close() }()

	s.mountConsole(svc, func(ctx context.Context, ids []int64) (any, error) { return engine.Readiness(ctx, ids) })
	s.mountProctorAPI(svc)
	s.mountRecordings(svc)
	s.mountReview(svc, engine)
	s.mountStills(svc, engine)
	return nil
}

type roomKey struct{}

type attemptsKey struct{}

// mountConsole serves the invigilators' console socket, fed by the proctor
// (proctor.Service.Feed).
func (s *Server) mountConsole(svc *proctor.Service, readiness proctor.Readiness) {
	sk := s.consoleSocket
	sk.Route(func(ctx context.Context, c *Conn, r *http.Request) (string, error) {
		room, err := strconv.ParseInt(r.URL.Query().Get("room"), 10, 64)
		if err != nil {
			return "", store.ErrNotFound
		}
		if _, err := svc.RoomScope(ctx, c.User, room); err != nil {
			return "", err
		}
		c.Set(roomKey{}, room)
		return store.RoomKey(room), nil
	})
	sk.OnReady(func(c *Conn) {
		go func() {
			if err := svc.Feed(c.Context(), c.User, c.Value(roomKey{}).(int64), readiness, consoleConn{c}); err != nil && c.Context().Err() == nil {
				c.Close("gone", "")
			}
		}()
	})
}

// consoleConn carries a console's feed on its socket; the candidates it
// may watch are kept for the view connection (attemptsKey) and given to
// its viewer.
type consoleConn struct{ *Conn }

func (c consoleConn) Watch(ids []int64) {
	c.Set(attemptsKey{}, ids)
	if viewer, ok := c.Value(viewerKey{}).(*media.Viewer); ok {
		viewer.Allow(ids)
	}
}

// proctorAPI serves the invigilators' and the admin's proctoring API;
// routes are methods below.
type proctorAPI struct {
	*Server
	svc *proctor.Service
}

func (s *Server) mountProctorAPI(svc *proctor.Service) {
	x := &proctorAPI{Server: s, svc: svc}
	staff := []store.Role{store.RoleInvigilator, store.RoleAdmin}
	handle := func(pattern string, roles []store.Role, h APIHandler) { s.mux.Handle(pattern, s.api(roles, h)) }

	handle("GET /api/proctor/rooms", staff, x.rooms)
	handle("GET /api/proctor/rooms/{id}", staff, x.room)
	handle("GET /api/proctor/attempts/{id}/flags", staff, x.flags)
	for _, kind := range []string{"message", "warning"} {
		handle("POST /api/proctor/attempts/{id}/"+kind+"s", staff, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
			id, err := pathID(r)
			if err != nil {
				return err
			}
			var req struct {
				Body string `json:"body"`
			}
			if err := decodeJSON(r, &req); err != nil {
				return err
			}
			m, err := svc.Message(r.Context(), a.User, id, kind, req.Body)
			if err != nil {
				return err
			}
			return WriteJSON(w, http.StatusCreated, map[string]any{"id": m.ID, "sent_at": m.SentAt})
		})
	}
	// A candidate who mistyped (or whose ticket number someone else tried)
	// is let in again at once by their invigilator.
	handle("POST /api/proctor/attempts/{id}/clear-login-delay", staff, x.clearLoginDelay)
	handle("POST /api/proctor/attempts/{id}/terminate", staff, withID(func(r *http.Request, a *Auth, id int64, req reasonReq) (any, error) {
		return nil, svc.Terminate(r.Context(), a.User, id, req.Reason)
	}))
	handle("POST /api/proctor/attempts/{id}/admit", staff, withID(func(r *http.Request, a *Auth, id int64, req struct {
		Force bool `json:"force"`
	}) (any, error) {
		return nil, svc.Admit(r.Context(), a.User, id, req.Force)
	}))
	handle("POST /api/proctor/attempts/{id}/refuse", staff, withID(func(r *http.Request, a *Auth, id int64, req reasonReq) (any, error) {
		return nil, svc.Refuse(r.Context(), a.User, id, req.Reason)
	}))
	handle("POST /api/proctor/flags/{id}/decision", []store.Role{store.RoleInvigilator, store.RoleReviewer, store.RoleAdmin}, withID(func(r *http.Request, a *Auth, id int64, req struct {
		Decision string `json:"decision"`
		Note     string `json:"note"`
	}) (any, error) {
		return svc.Decide(r.Context(), a.User, id, req.Decision, req.Note)
	}))

	// Room assignment and proctoring rules, for admins; every change keeps
	// the invigilation rules.
	admin := []store.Role{store.RoleAdmin}
	handle("GET /api/admin/exams/{id}/proctor-rules", admin, x.rules)
	handle("PUT /api/admin/exams/{id}/proctor-rules", admin, x.setRules)
	handle("POST /api/admin/rooms/{id}/invigilators", admin, withID(func(r *http.Request, a *Auth, id int64, req userReq) (any, error) {
		if err := svc.AddInvigilator(r.Context(), id, req.UserID, a.User.ID); err != nil {
			return nil, err
		}
		return nil, nil
	}))
	handle("DELETE /api/admin/rooms/{id}/invigilators/{user}", admin, x.removeInvigilator)
	handle("PUT /api/admin/seats/{id}/invigilator", admin, withID(func(r *http.Request, a *Auth, id int64, req userReq) (any, error) {
		if err := svc.Assign(r.Context(), id, req.UserID, a.User.ID); err != nil {
			return nil, err
		}
		return nil, nil
	}))
	handle("POST /api/admin/rooms/{id}/balance", admin, x.balance)
}

// rooms lists the rooms the caller watches (GET /api/proctor/rooms).
func (s *proctorAPI) rooms(w http.ResponseWriter, r *http.Request, a *Auth) error {
	rooms, err := s.svc.Rooms(r.Context(), a.User)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"rooms": rooms})
}

// room shows a room with its candidates and their state (GET /api/proctor/rooms/{id}).
func (s *proctorAPI) room(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	v, err := s.svc.Room(r.Context(), a.User, id)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, v)
}

// flags lists an attempt's flags (GET /api/proctor/attempts/{id}/flags).
func (s *proctorAPI) flags(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := s.svc.CanSee(r.Context(), a.User, id); err != nil {
		return err
	}
	flags, err := s.svc.Flags(r.Context(), id)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"flags": flags})
}

// clearLoginDelay clears a candidate's login waits (POST /api/proctor/attempts/{id}/clear-login-delay).
func (s *proctorAPI) clearLoginDelay(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	info, err := s.svc.CanSee(r.Context(), a.User, id)
	if err != nil {
		return err
	}
	u, err := s.db.UserByID(r.Context(), info.CandidateID)
	if err != nil {
		return err
	}
	if err := s.ClearLoginDelay(r.Context(), u.Username); err != nil {
		return err
	}
	s.audit(r.Context(), &a.User.ID, "login_delay_cleared", "user", strconv.FormatInt(u.ID, 10), clientIP(r), map[string]any{"attempt_id": id})
	return WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// rules shows the proctoring rules in force for an exam and its overrides (GET /api/admin/exams/{id}/proctor-rules).
func (s *proctorAPI) rules(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	rules, err := s.svc.ExamRules(r.Context(), id)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"rules": rules})
}

// setRules sets an exam's proctoring-rule overrides (PUT /api/admin/exams/{id}/proctor-rules).
func (s *proctorAPI) setRules(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := decodeJSON(r, &raw); err != nil {
		return err
	}
	if err := s.svc.SetExamRules(r.Context(), a.User.ID, id, string(raw)); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// removeInvigilator takes an invigilator out of a room (DELETE /api/admin/rooms/{id}/invigilators/{user}).
func (s *proctorAPI) removeInvigilator(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	user, err := strconv.ParseInt(r.PathValue("user"), 10, 64)
	if err != nil {
		return store.ErrNotFound
	}
	if err := s.svc.RemoveInvigilator(r.Context(), id, user, a.User.ID); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// balance spreads a room's candidates evenly over its invigilators (POST /api/admin/rooms/{id}/balance).
func (s *proctorAPI) balance(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.svc.Balance(r.Context(), id, a.User.ID); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

type reasonReq struct {
	Reason string `json:"reason"`
}

type userReq struct {
	UserID int64 `json:"user_id"`
}

// mountSignals lets the candidate's page report signals and acknowledge
// the invigilator's messages on its exam socket.
func (s *Server) mountSignals(svc *proctor.Service) {
	sk := s.examSocket
	sk.Handle("signal", func(ctx context.Context, c *Conn, m *Inbound) error {
		var sig struct {
			Kind   string         `json:"kind"`
			Phase  proctor.Phase  `json:"phase"`
			Detail map[string]any `json:"detail"`
		}
		if err := json.Unmarshal(m.Raw, &sig); err != nil {
			return ErrBadRequest
		}
		if err := svc.Observe(ctx, exam.AttemptOf(c), "page", sig.Kind, sig.Phase, sig.Detail); err != nil {
			return err
		}
		return c.Send(map[string]any{"type": "ack", "id": m.ID})
	})
	sk.Handle("message_ack", func(ctx context.Context, c *Conn, m *Inbound) error {
		var a struct {
			MessageID int64 `json:"message_id"`
		}
		if err := json.Unmarshal(m.Raw, &a); err != nil {
			return ErrBadRequest
		}
		if err := svc.Ack(ctx, exam.AttemptOf(c), a.MessageID); err != nil {
			return err
		}
		return c.Send(map[string]any{"type": "ack", "id": m.ID})
	})
	sk.OnReady(func(c *Conn) {
		if err := svc.Redeliver(c.Context(), exam.AttemptOf(c)); err != nil {
			s.log.Warn("redeliver messages", "err", err)
		}
	})
}
