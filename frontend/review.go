package frontend

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/proctor/review"
	"github.com/examhall/examhall/store"
)

// mountRecordings serves recordings: to reviewers and admins, and to the
// candidate's own invigilator while the exam is on; never to candidates.
// Range requests are answered (seeking does not download the whole file),
// and each viewing is audited.
func (s *Server) mountRecordings(svc *proctor.Service) {
	staff := []store.Role{store.RoleReviewer, store.RoleAdmin, store.RoleInvigilator}
	s.mux.Handle("GET /api/attempts/{id}/recordings", s.api(staff, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		recs, err := svc.Recordings(r.Context(), a.User, id)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, review.Build(recs))
	}))
	s.mux.Handle("GET /api/recordings/{id}", s.api(staff, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		rg := r.Header.Get("Range")
		rec, err := svc.WatchRecording(r.Context(), a.User, id, rg == "" || strings.HasPrefix(rg, "bytes=0-"))
		if err != nil {
			return err
		}
		f, mod, err := s.media.OpenRecording(r.Context(), rec)
		if err != nil {
			return err
		}
		defer f.Close()
		w.Header().Set("Content-Type", "video/webm")
		w.Header().Set("Cache-Control", "private, no-store")
		http.ServeContent(w, r, "", mod, f)
		return nil
	}))
}

// reviewAPI serves the reviewers' API; each route is a method below.
type reviewAPI struct {
	*Server
	svc    *proctor.Service
	engine *exam.Engine
}

// mountReview is the reviewers' API: sessions, attempts to review, one
// attempt with its timeline, flags and events, and the final decision.
func (s *Server) mountReview(svc *proctor.Service, engine *exam.Engine) {
	x := &reviewAPI{Server: s, svc: svc, engine: engine}
	reviewers := []store.Role{store.RoleReviewer, store.RoleAdmin}
	handle := func(pattern string, h APIHandler) { s.mux.Handle(pattern, s.api(reviewers, h)) }
	handle("GET /api/review/sessions", x.listSessions)
	handle("GET /api/review/sessions/{id}/attempts", x.sessionAttempts)
	handle("GET /api/review/attempts/{id}", x.attempt)
	handle("POST /api/review/attempts/{id}/decision", x.decide)
	s.mux.Handle("GET /review/report", s.page(reviewers, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := strconv.ParseInt(r.URL.Query().Get("id"), 10, 64)
		if err != nil {
			return store.ErrNotFound
		}
		rep, err := svc.Report(r.Context(), id)
		if err != nil {
			return err
		}
		s.render(w, r, s.pages.report, http.StatusOK, &pageData{Title: T("report.title"), CSRF: a.Session.CSRFToken, User: a.User, Report: rep})
		return nil
	}))
	handle("GET /api/review/sessions/{id}/report.csv", x.reportCSV)
	s.mux.Handle("GET /review/attempt", s.page(reviewers, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		s.render(w, r, s.pages.review, http.StatusOK, &pageData{Title: T("home.reviewer.title"), CSRF: a.Session.CSRFToken, User: a.User, Wide: true})
		return nil
	}))
}

// listSessions lists the sessions to review (GET /api/review/sessions).
func (s *reviewAPI) listSessions(w http.ResponseWriter, r *http.Request, a *Auth) error {
	list, err := s.engine.Sessions(r.Context())
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"sessions": list})
}

// sessionAttempts lists a session's attempts with their flags and decisions (GET /api/review/sessions/{id}/attempts).
func (s *reviewAPI) sessionAttempts(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	rows, err := s.svc.Reviews().List(r.Context(), id, r.URL.Query().Get("filter"))
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"attempts": rows})
}

// attempt shows one attempt to review: its timeline of recordings, flags and events (GET /api/review/attempts/{id}).
func (s *reviewAPI) attempt(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	info, err := s.svc.Info(r.Context(), id)
	if err != nil {
		return err
	}
	at, err := s.svc.Reviews().Outcome(r.Context(), id)
	if err != nil {
		return err
	}
	recs, err := s.svc.Reviews().Recordings(r.Context(), id)
	if err != nil {
		return err
	}
	flags, err := s.svc.Flags(r.Context(), id)
	if err != nil {
		return err
	}
	events, err := s.svc.Reviews().Events(r.Context(), id)
	if err != nil {
		return err
	}
	decision, err := s.svc.Reviews().Decision(r.Context(), id)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"attempt": info, "status": at.Status, "score": at.Score, "passed": at.Passed,
		"started_at": at.StartedAt, "ended_at": at.EndedAt, "end_reason": at.EndReason,
		"timeline": review.Build(recs), "flags": flags, "events": events, "decision": decision})
}

// decide records a reviewer's decision on an attempt (POST /api/review/attempts/{id}/decision).
func (s *reviewAPI) decide(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req struct {
		Decision string `json:"decision"`
		Reason   string `json:"reason"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.svc.Reviews().Decide(r.Context(), id, a.User.ID, req.Decision, req.Reason); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// reportCSV downloads a session's incident report (GET /api/review/sessions/{id}/report.csv).
func (s *reviewAPI) reportCSV(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	rows, err := s.svc.Reviews().List(r.Context(), id, "")
	if err != nil {
		return err
	}
	attachment(w, fmt.Sprintf("incidents-%d.csv", id), "text/csv; charset=utf-8")
	w.Write([]byte("\uFEFF"))
	cw := sheetWriter{csv.NewWriter(w)}
	cw.Write([]string{"准考证号 ticket", "姓名 name", "考场 room", "状态 status", "成绩 score", "严重 critical", "警告 warning", "提示 info", "确认违规 confirmed", "结论 decision", "理由 reason"})
	for _, row := range rows {
		cw.Write([]string{row.Ticket, row.Name, row.Room, row.Status, fmtFloat(row.Score), strconv.Itoa(row.Flags["critical"]), strconv.Itoa(row.Flags["warning"]),
			strconv.Itoa(row.Flags["info"]), strconv.Itoa(row.Confirmed), row.Decision, row.Reason})
	}
	cw.Flush()
	return cw.Error()
}
