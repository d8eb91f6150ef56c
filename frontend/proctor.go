package frontend

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

// consoleRefresh is how often a console gets a fresh room snapshot
// (progress, time left, presence); flags arrive as they are raised.
const consoleRefresh = 5 * time.Second

// mountProctor puts proctoring on the web: signals and acknowledgements on
// the candidate's exam socket, the invigilator's console socket and API,
// and room assignment for admins.
func (s *Server) mountProctor(ctx context.Context, svc *proctor.Service, engine *exam.Engine) error {
	// Candidate side: the page reports signals and acknowledges messages.
	for _, sk := range s.sockets {
		if sk.path != "/ws/exam" {
			continue
		}
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

	s.mountConsole(svc, engine.Readiness)
	s.mountProctorAPI(svc)
	s.mountRecordings(svc)
	s.mountReview(svc)
	s.mountStills(svc, engine)
	return nil
}

type roomKey struct{}

type attemptsKey struct{}

// readinessFunc is where candidates stand before the exam (exam.Engine.Readiness).
type readinessFunc func(ctx context.Context, ids []int64) (map[int64]*exam.ReadinessView, error)

func (s *Server) mountConsole(svc *proctor.Service, readiness readinessFunc) {
	sk := s.Socket("/ws/console", []store.Role{store.RoleInvigilator, store.RoleAdmin})
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
	sk.OnReady(func(c *Conn) { go s.runConsole(c, svc, readiness) })
}

// runConsole feeds one console: a snapshot now and every few seconds, and
// each flag, presence change and acknowledgement of its candidates as it
// happens. Candidates not yet started come with their readiness, for the
// pre-exam view.
func (s *Server) runConsole(c *Conn, svc *proctor.Service, readiness readinessFunc) {
	ctx := c.Context()
	room := c.Value(roomKey{}).(int64)
	flags, err := s.bus.Subscribe(ctx, proctor.FlagTopic)
	if err != nil {
		c.Close("gone", "")
		return
	}
	defer flags.Close()
	activity, err := s.bus.Subscribe(ctx, proctor.ActivityTopic)
	if err != nil {
		c.Close("gone", "")
		return
	}
	defer activity.Close()
	mine := map[int64]bool{}
	snapshot := func() {
		v, err := svc.Room(ctx, c.User, room)
		if err != nil {
			c.Close("gone", "")
			return
		}
		mine = map[int64]bool{}
		ids := make([]int64, 0, len(v.Candidates))
		var waiting []int64
		for _, cand := range v.Candidates {
			mine[cand.AttemptID] = true
			ids = append(ids, cand.AttemptID)
			if cand.Status == "not_started" {
				waiting = append(waiting, cand.AttemptID)
			}
		}
		ready, err := readiness(ctx, waiting)
		if err != nil {
			s.log.Warn("console readiness", "err", err)
		}
		// The console's video follows what it may see.
		c.Set(attemptsKey{}, ids)
		if viewer, ok := c.Value(viewerKey{}).(*media.Viewer); ok {
			viewer.Allow(ids)
		}
		c.Send(map[string]any{"type": "room", "room": v, "readiness": ready})
	}
	snapshot()
	t := time.NewTicker(consoleRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			snapshot()
		case m, ok := <-flags.C:
			if !ok {
				return
			}
			var ev proctor.FlagEvent
			if json.Unmarshal(m.Data, &ev) != nil || !mine[ev.Flag.AttemptID] {
				continue
			}
			if c.Send(map[string]any{"type": "flag", "flag": ev.Flag, "new": ev.New}) == nil && ev.New {
				svc.ObserveLatency(time.Since(ev.Received))
			}
		case m, ok := <-activity.C:
			if !ok {
				return
			}
			var a proctor.Activity
			if json.Unmarshal(m.Data, &a) != nil || !mine[a.AttemptID] {
				continue
			}
			c.Send(map[string]any{"type": "activity", "activity": a})
		}
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
		if err := proctor.AddInvigilator(r.Context(), s.db, id, req.UserID, a.User.ID); err != nil {
			return nil, err
		}
		return nil, nil
	}))
	handle("DELETE /api/admin/rooms/{id}/invigilators/{user}", admin, x.removeInvigilator)
	handle("PUT /api/admin/seats/{id}/invigilator", admin, withID(func(r *http.Request, a *Auth, id int64, req userReq) (any, error) {
		if err := proctor.Assign(r.Context(), s.db, id, req.UserID); err != nil {
			return nil, err
		}
		s.audit(r.Context(), &a.User.ID, "candidate_assigned", "seat", strconv.FormatInt(id, 10), clientIP(r), req)
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
	if err := proctor.RemoveInvigilator(r.Context(), s.db, id, user, a.User.ID); err != nil {
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
	if err := proctor.Balance(r.Context(), s.db, id); err != nil {
		return err
	}
	s.audit(r.Context(), &a.User.ID, "room_balanced", "room", strconv.FormatInt(id, 10), clientIP(r), nil)
	return WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

type reasonReq struct {
	Reason string `json:"reason"`
}

type userReq struct {
	UserID int64 `json:"user_id"`
}
