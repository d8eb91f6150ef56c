package frontend

import (
	"context"
	"net/http"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

// MountExam puts the exam engine on the web: the candidate's device socket
// (/ws/exam?attempt=ID) and the candidate's exam API.
func (web *Server) MountExam(engine *exam.Engine) {
	sk := web.Socket("/ws/exam", []store.Role{store.RoleCandidate})
	sk.OnOpen(func(ctx context.Context, c *Conn, r *http.Request) error {
		return engine.OpenConn(ctx, c, c.User.ID, r.URL.Query().Get("attempt"))
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
	web.mux.Handle("POST /api/mock", web.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := engine.StartMock(r.Context(), a.User.ID)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusCreated, map[string]any{"attempt_id": id})
	}))
}
