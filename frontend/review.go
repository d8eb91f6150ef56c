package frontend

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"

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
