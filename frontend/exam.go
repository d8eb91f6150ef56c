package frontend

import (
	"context"
	"io"
	"net/http"
	"strconv"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

// mountExam puts the exam engine on the web: the candidate's device socket
// (/ws/exam?attempt=ID) and the candidate's exam API.
func (web *Server) mountExam(engine *exam.Engine) {
	sk := web.examSocket
	sk.Route(func(ctx context.Context, c *Conn, r *http.Request) (string, error) {
		return engine.RoomOfOpen(ctx, c.User.ID, r.URL.Query().Get("attempt"))
	})
	sk.OnOpen(func(ctx context.Context, c *Conn, r *http.Request) error {
		return engine.OpenConn(ctx, c, c.User.ID, r.URL.Query().Get("attempt"), r.URL.Query().Get("page"))
	})
	sk.OnReady(func(c *Conn) { engine.ConnReady(c, c.ID) })
	sk.OnClose(func(c *Conn) { engine.ConnClosed(c, c.ID) })
	for typ, h := range engine.Messages() {
		sk.Handle(typ, func(ctx context.Context, c *Conn, m *Inbound) error {
			return h(ctx, c, m.ID, m.Seq, m.Raw)
		})
	}
	web.mountExamAPI(engine)
	web.mountExamAdmin(engine)
}

func (web *Server) mountExamAPI(engine *exam.Engine) {
	candidate := []store.Role{store.RoleCandidate}
	web.mux.Handle("GET /api/attempts", web.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		list, err := engine.Attempts(r.Context(), a.User.ID)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, map[string]any{"attempts": list})
	}))
	web.mux.Handle("GET /api/device-check/browser", web.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		b := exam.CheckBrowser(r.UserAgent())
		reply := map[string]any{"browser": b}
		if b.Problem != "" {
			reply["fix"] = T(b.Problem)
		}
		return WriteJSON(w, http.StatusOK, reply)
	}))
	// The page times an upload to see whether two video streams will fit.
	web.mux.Handle("POST /api/device-check/upload", web.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		n, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, 4<<20))
		if err != nil {
			return ErrTooLarge
		}
		return WriteJSON(w, http.StatusOK, map[string]int64{"bytes": n})
	}))
	web.mux.Handle("POST /api/attempts/{id}/device-check", web.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		if err := engine.Owns(r.Context(), a.User.ID, id); err != nil {
			return err
		}
		var req struct {
			Results map[string]string `json:"results"`
		}
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		d, err := engine.CheckDevices(r.Context(), id, r.UserAgent(), req.Results)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, d)
	}))
	web.mux.Handle("GET /check", web.page(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := strconv.ParseInt(r.URL.Query().Get("attempt"), 10, 64)
		if err != nil || id <= 0 {
			return store.ErrNotFound
		}
		if err := engine.Owns(r.Context(), a.User.ID, id); err != nil {
			return err
		}
		need, err := engine.UploadNeedKbps(r.Context(), id)
		if err != nil {
			return err
		}
		web.render(w, r, web.pages.check, http.StatusOK, &pageData{Title: T("check.title"), CSRF: a.Session.CSRFToken, User: a.User, Attempt: id, NeedKbps: need})
		return nil
	}))
	web.mux.Handle("POST /api/mock", web.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := engine.StartMock(r.Context(), a.User.ID)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusCreated, map[string]any{"attempt_id": id})
	}))
}
