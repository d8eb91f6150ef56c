package frontend

import (
	"context"
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
		if err := svc.MayWatch(r.Context(), a.User, id); err != nil {
			return err
		}
		recs, err := review.Recordings(r.Context(), s.db, id)
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
		rec, err := review.Recording(r.Context(), s.db, id)
		if err != nil {
			return err
		}
		if err := svc.MayWatch(r.Context(), a.User, rec.AttemptID); err != nil {
			return err
		}
		f, mod, err := s.media.OpenRecording(r.Context(), rec)
		if err != nil {
			return err
		}
		defer f.Close()
		if rg := r.Header.Get("Range"); rg == "" || strings.HasPrefix(rg, "bytes=0-") {
			s.audit(r.Context(), &a.User.ID, "recording_viewed", "recording", strconv.FormatInt(rec.ID, 10), clientIP(r),
				map[string]any{"attempt": rec.AttemptID, "device": rec.Device})
		}
		w.Header().Set("Content-Type", "video/webm")
		w.Header().Set("Cache-Control", "private, no-store")
		http.ServeContent(w, r, "", mod, f)
		return nil
	}))
}

// reviewAPI serves the reviewers' API; each route is a method below.
type reviewAPI struct {
	*Server
	svc *proctor.Service
}

// mountReview is the reviewers' API: sessions, attempts to review, one
// attempt with its timeline, flags and events, and the final decision.
func (s *Server) mountReview(svc *proctor.Service) {
	x := &reviewAPI{Server: s, svc: svc}
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
		rep, err := s.report(r.Context(), svc, id)
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
	list, err := exam.Sessions(r.Context(), s.db)
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
	rows, err := review.List(r.Context(), s.db, id, r.URL.Query().Get("filter"))
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
	at, err := review.Outcome(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	recs, err := review.Recordings(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	flags, err := s.svc.Flags(r.Context(), id)
	if err != nil {
		return err
	}
	events, err := review.Events(r.Context(), s.db, id)
	if err != nil {
		return err
	}
	decision, err := review.Decision(r.Context(), s.db, id)
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
	if err := review.Decide(r.Context(), s.db, id, a.User.ID, req.Decision, req.Reason); err != nil {
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
	rows, err := review.List(r.Context(), s.db, id, "")
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

// Report is an attempt's incident report.
type Report struct {
	Name, Ticket, Room, Status, EndReason string
	Started, Ended, Score                 string
	Decision, Reason                      string
	Flags                                 []proctor.FlagView
	Events                                []review.Event
}

func (s *Server) report(ctx context.Context, svc *proctor.Service, id int64) (*Report, error) {
	info, err := svc.Info(ctx, id)
	if err != nil {
		return nil, err
	}
	at, err := review.Outcome(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	flags, err := svc.Flags(ctx, id)
	if err != nil {
		return nil, err
	}
	events, err := review.Events(ctx, s.db, id)
	if err != nil {
		return nil, err
	}
	rep := &Report{Name: info.Name, Ticket: info.Ticket, Room: info.RoomName, Status: at.Status, EndReason: at.EndReason,
		Started: fmtTime(at.StartedAt), Ended: fmtTime(at.EndedAt), Score: fmtFloat(at.Score), Flags: flags, Events: events}
	if d, err := review.Decision(ctx, s.db, id); err != nil {
		return nil, err
	} else if d != nil {
		rep.Decision, rep.Reason = d.Decision, d.Reason
	}
	return rep, nil
}
