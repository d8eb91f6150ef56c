package frontend

import (
	"context"
	"net/http"
	"os"
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
		if err := s.mayWatch(r.Context(), svc, a.User, id); err != nil {
			return err
		}
		var recs []store.Recording
		if err := s.db.WithContext(r.Context()).Where("attempt_id = ?", id).Order("started_at").Find(&recs).Error; err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, review.Build(recs))
	}))
	s.mux.Handle("GET /api/recordings/{id}", s.api(staff, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var rec store.Recording
		if err := s.db.WithContext(r.Context()).Take(&rec, id).Error; err != nil {
			return err
		}
		if err := s.mayWatch(r.Context(), svc, a.User, rec.AttemptID); err != nil {
			return err
		}
		f, err := os.Open(rec.Path)
		if err != nil {
			return store.ErrNotFound
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if rg := r.Header.Get("Range"); rg == "" || strings.HasPrefix(rg, "bytes=0-") {
			s.audit(r.Context(), &a.User.ID, "recording_viewed", "recording", strconv.FormatInt(rec.ID, 10), clientIP(r),
				map[string]any{"attempt": rec.AttemptID, "device": rec.Device})
		}
		w.Header().Set("Content-Type", "video/webm")
		w.Header().Set("Cache-Control", "private, no-store")
		http.ServeContent(w, r, "", fi.ModTime(), f)
		return nil
	}))
}

// mountReview is the reviewers' API: sessions, attempts to review, one
// attempt with its timeline, flags and events, and the final decision.
func (s *Server) mountReview(svc *proctor.Service) {
	reviewers := []store.Role{store.RoleReviewer, store.RoleAdmin}
	handle := func(pattern string, h APIHandler) { s.mux.Handle(pattern, s.api(reviewers, h)) }
	handle("GET /api/review/sessions", func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		list, err := exam.Sessions(r.Context(), s.db)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, map[string]any{"sessions": list})
	})
	handle("GET /api/review/sessions/{id}/attempts", func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		rows, err := review.List(r.Context(), s.db, id, r.URL.Query().Get("filter"))
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, map[string]any{"attempts": rows})
	})
	handle("GET /api/review/attempts/{id}", func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		info, err := svc.Info(r.Context(), id)
		if err != nil {
			return err
		}
		var at store.Attempt
		if err := s.db.WithContext(r.Context()).Select("id, status, score, passed, started_at, ended_at, end_reason").Take(&at, id).Error; err != nil {
			return err
		}
		var recs []store.Recording
		if err := s.db.WithContext(r.Context()).Where("attempt_id = ?", id).Order("started_at").Find(&recs).Error; err != nil {
			return err
		}
		flags, err := svc.Flags(r.Context(), id)
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
	})
	handle("POST /api/review/attempts/{id}/decision", func(w http.ResponseWriter, r *http.Request, a *Auth) error {
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
	})
	s.mux.Handle("GET /review/attempt", s.page(reviewers, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		s.render(w, r, s.pages.review, http.StatusOK, &pageData{Title: T("home.reviewer.title"), CSRF: a.Session.CSRFToken, User: a.User, Wide: true})
		return nil
	}))
}

// mayWatch says whether u may watch an attempt's recordings.
func (s *Server) mayWatch(ctx context.Context, svc *proctor.Service, u *store.User, attemptID int64) error {
	switch u.Role {
	case store.RoleAdmin, store.RoleReviewer:
		var n int64
		if err := s.db.WithContext(ctx).Model(&store.Attempt{}).Where("id = ?", attemptID).Count(&n).Error; err != nil || n == 0 {
			return store.ErrNotFound
		}
		return nil
	case store.RoleInvigilator:
		if _, err := svc.CanSee(ctx, u, attemptID); err != nil {
			return err
		}
		var a store.Attempt
		if err := s.db.WithContext(ctx).Select("status").Take(&a, attemptID).Error; err != nil {
			return err
		}
		if a.Status != "in_progress" {
			return proctor.ErrNotYours
		}
		return nil
	}
	return ErrForbidden
}
