package frontend

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"io"
	"net/http"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

// The candidate's journey before the exam: the device check's test
// publish, the rules, the identity still, the phone and the set-up
// checklist, each a step of the lobby; and the invigilator's side of it:
// the identity still beside the candidate, and admitting the whole room.

// ErrBadStill: the identity still is not a usable photo.
var ErrBadStill = errors.New("the identity still must be a JPEG photo of at least 320x240")

const maxPhoto = 1 << 20

var stillName = regexp.MustCompile(`^[0-9a-f]{64}\.jpg$`)

// serveFile serves a file of one kind to someone already allowed to see it.
func serveFile(w http.ResponseWriter, r *http.Request, files *store.Files, rel, cache string) error {
	f, mod, err := files.Open(r.Context(), rel)
	if err != nil {
		return store.ErrNotFound
	}
	defer f.Close()
	if strings.HasSuffix(rel, ".jpg") {
		w.Header().Set("Content-Type", "image/jpeg")
	}
	w.Header().Set("Cache-Control", cache)
	http.ServeContent(w, r, path.Base(rel), mod, f)
	return nil
}

// servePhoto serves a content-named JPEG (an identity still, a photo).
func servePhoto(w http.ResponseWriter, r *http.Request, files *store.Files, name string) error {
	if !stillName.MatchString(name) {
		return store.ErrNotFound
	}
	return serveFile(w, r, files, name, "private, no-cache")
}

// mountJourney puts the steps before the exam on the web.
func (s *Server) mountJourney(engine *exam.Engine, av *media.Service, svc *proctor.Service) {
	candidate := []store.Role{store.RoleCandidate}
	staff := []store.Role{store.RoleInvigilator, store.RoleAdmin, store.RoleReviewer}
	// own wraps a candidate's handler of their own attempt {id}.
	own := func(h func(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error) http.Handler {
		return s.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
			id, err := pathID(r)
			if err != nil {
				return err
			}
			if err := engine.Owns(r.Context(), a.User.ID, id); err != nil {
				return err
			}
			return h(w, r, a, id)
		})
	}
	readiness := func(w http.ResponseWriter, r *http.Request, id int64) error {
		views, err := engine.Readiness(r.Context(), []int64{id})
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, map[string]any{"readiness": views[id], "rules_version": exam.RulesVersion,
			"setup_items": exam.SetupItems, "retention_days": s.cfg.RetentionDays})
	}
	s.mux.Handle("GET /api/attempts/{id}/readiness", own(func(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
		return readiness(w, r, id)
	}))
	s.mux.Handle("POST /api/attempts/{id}/rules", own(func(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
		var req struct {
			Version string `json:"version"`
		}
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		if err := engine.AcceptRules(r.Context(), id, req.Version); err != nil {
			return err
		}
		s.audit(r.Context(), &a.User.ID, "rules_accepted", "attempt", strconv.FormatInt(id, 10), clientIP(r), req)
		return readiness(w, r, id)
	}))
	s.mux.Handle("POST /api/attempts/{id}/identity", own(func(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPhoto))
		if err != nil {
			return ErrTooLarge
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width < 320 || cfg.Height < 240 {
			return ErrBadStill
		}
		name, err := storeByContent(r.Context(), s.identity, b, "jpg")
		if err != nil {
			return err
		}
		still := exam.Identity{SHA256: name[:64], Width: cfg.Width, Height: cfg.Height}
		if err := engine.RecordIdentity(r.Context(), id, still); err != nil {
			return err
		}
		s.audit(r.Context(), &a.User.ID, "identity_still", "attempt", strconv.FormatInt(id, 10), clientIP(r), still)
		return readiness(w, r, id)
	}))
	serveStill := func(w http.ResponseWriter, r *http.Request, id int64) error {
		still, err := engine.IdentityOf(r.Context(), id)
		if err != nil {
			return err
		}
		return servePhoto(w, r, s.identity, still.SHA256+".jpg")
	}
	s.mux.Handle("GET /api/attempts/{id}/identity", own(func(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
		return serveStill(w, r, id)
	}))
	s.mux.Handle("GET /api/proctor/attempts/{id}/identity", s.api(staff, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		if err := svc.MayIdentify(r.Context(), a.User, id); err != nil {
			return err
		}
		return serveStill(w, r, id)
	}))
	// The registered photo: an admin files it; the invigilator sees it
	// beside the identity still.
	s.mux.Handle("PUT /api/admin/users/{id}/photo", s.api([]store.Role{store.RoleAdmin}, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		if err := engine.IsCandidate(r.Context(), id); err != nil {
			return err
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPhoto))
		if err != nil {
			return ErrTooLarge
		}
		if _, err := jpeg.DecodeConfig(bytes.NewReader(b)); err != nil {
			return ErrBadStill
		}
		name, err := storeByContent(r.Context(), s.photos, b, "jpg")
		if err != nil {
			return err
		}
		if err := engine.RegisterPhoto(r.Context(), id, a.User.ID, name); err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, map[string]string{"photo": name})
	}))
	s.mux.Handle("GET /api/proctor/attempts/{id}/photo", s.api(staff, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		if err := svc.MayIdentify(r.Context(), a.User, id); err != nil {
			return err
		}
		photo, err := engine.PhotoOfAttempt(r.Context(), id)
		if err != nil {
			return err
		}
		return servePhoto(w, r, s.photos, photo)
	}))
	s.mux.Handle("POST /api/attempts/{id}/phone", own(func(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
		if err := engine.RecordPhone(r.Context(), id, av.Live(id, media.Phone)); err != nil {
			return err
		}
		return readiness(w, r, id)
	}))
	s.mux.Handle("POST /api/attempts/{id}/setup", own(func(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
		var req struct {
			Items []string `json:"items"`
		}
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		if err := engine.ConfirmSetup(r.Context(), id, req.Items); err != nil {
			return err
		}
		s.audit(r.Context(), &a.User.ID, "setup_confirmed", "attempt", strconv.FormatInt(id, 10), clientIP(r), req)
		return readiness(w, r, id)
	}))

	// The device check's test publish: the page offers one camera with
	// every candidate gathered, then asks whether packets arrived.
	s.mux.Handle("GET /api/device-check/webrtc", s.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		return WriteJSON(w, http.StatusOK, map[string]any{"ice_servers": av.ICEServers()})
	}))
	s.mux.Handle("POST /api/device-check/webrtc", s.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		var req struct {
			SDP string `json:"sdp"`
		}
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		id, answer, err := av.Probe(ctx, a.User.ID, req.SDP)
		if err != nil {
			return err
		}
		// The test connection lives on this node: its id names the node.
		return WriteJSON(w, http.StatusCreated, map[string]any{"id": s.node.ID() + "." + id, "sdp": answer})
	}))
	s.mux.Handle("GET /api/device-check/webrtc/{id}", s.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		node, id, _ := strings.Cut(r.PathValue("id"), ".")
		if node != s.node.ID() {
			// Asked of another node of the cluster: sent to the one that
			// holds the test connection.
			to, ok := s.node.URLOf(node)
			if !ok {
				return store.ErrNotFound
			}
			http.Redirect(w, r, to+r.URL.Path, http.StatusTemporaryRedirect)
			return nil
		}
		res, err := av.ProbeResult(a.User.ID, id)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, res)
	}))

	// The invigilator admits every candidate of the room who is ready.
	s.mux.Handle("POST /api/proctor/rooms/{id}/admit-ready", s.api([]store.Role{store.RoleInvigilator, store.RoleAdmin}, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		n, err := svc.AdmitReady(r.Context(), a.User, id)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusOK, map[string]int{"admitted": n})
	}))
}
