package frontend

import (
	"context"
	"io"
	"net/http"
	"path"
	"regexp"
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

// journeyAPI serves the candidate's steps before the exam and what staff
// see of them; routes are methods below.
type journeyAPI struct {
	*Server
	engine *exam.Engine
	av     *media.Service
	svc    *proctor.Service
}

// mountJourney puts the steps before the exam on the web.
func (s *Server) mountJourney(engine *exam.Engine, av *media.Service, svc *proctor.Service) {
	x := &journeyAPI{Server: s, engine: engine, av: av, svc: svc}
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
	s.mux.Handle("GET /api/attempts/{id}/readiness", own(x.showReadiness))
	s.mux.Handle("POST /api/attempts/{id}/rules", own(x.acceptRules))
	s.mux.Handle("POST /api/attempts/{id}/identity", own(x.takeIdentity))
	s.mux.Handle("GET /api/attempts/{id}/identity", own(x.ownIdentity))
	s.mux.Handle("GET /api/proctor/attempts/{id}/identity", s.api(staff, x.identityForStaff))
	// The registered photo: an admin files it; the invigilator sees it
	// beside the identity still.
	s.mux.Handle("PUT /api/admin/users/{id}/photo", s.api([]store.Role{store.RoleAdmin}, x.registerPhoto))
	s.mux.Handle("GET /api/proctor/attempts/{id}/photo", s.api(staff, x.photoForStaff))
	s.mux.Handle("POST /api/attempts/{id}/phone", own(x.phoneStep))
	s.mux.Handle("POST /api/attempts/{id}/setup", own(x.confirmSetup))

	// The device check's test publish: the page offers one camera with
	// every candidate gathered, then asks whether packets arrived.
	s.mux.Handle("GET /api/device-check/webrtc", s.api(candidate, x.probeConfig))
	s.mux.Handle("POST /api/device-check/webrtc", s.api(candidate, x.probe))
	s.mux.Handle("GET /api/device-check/webrtc/{id}", s.api(candidate, x.probeResult))

	// The invigilator admits every candidate of the room who is ready.
	s.mux.Handle("POST /api/proctor/rooms/{id}/admit-ready", s.api([]store.Role{store.RoleInvigilator, store.RoleAdmin}, x.admitReady))
}

// serveStill serves an attempt's identity still.
func (s *journeyAPI) serveStill(w http.ResponseWriter, r *http.Request, id int64) error {
	still, err := s.engine.IdentityOf(r.Context(), id)
	if err != nil {
		return err
	}
	return servePhoto(w, r, s.identity, still.SHA256+".jpg")
}

// readiness replies with where the candidate stands in the lobby, after
// each of its steps.
func (s *journeyAPI) readiness(w http.ResponseWriter, r *http.Request, id int64) error {
	views, err := s.engine.Readiness(r.Context(), []int64{id})
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"readiness": views[id], "rules_version": exam.RulesVersion,
		"setup_items": exam.SetupItems, "retention_days": s.cfg.RetentionDays})
}

// showReadiness shows where the candidate stands in the lobby (GET /api/attempts/{id}/readiness).
func (s *journeyAPI) showReadiness(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
	return s.readiness(w, r, id)
}

// acceptRules records that the candidate accepted the rules (POST /api/attempts/{id}/rules).
func (s *journeyAPI) acceptRules(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
	var req struct {
		Version string `json:"version"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.engine.AcceptRules(r.Context(), id, req.Version); err != nil {
		return err
	}
	return s.readiness(w, r, id)
}

// takeIdentity takes the candidate's identity still (POST /api/attempts/{id}/identity).
func (s *journeyAPI) takeIdentity(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, exam.MaxPhoto))
	if err != nil {
		return ErrTooLarge
	}
	still, err := exam.CheckIdentityStill(b)
	if err != nil {
		return err
	}
	name, err := storeByContent(r.Context(), s.identity, b, "jpg")
	if err != nil {
		return err
	}
	still.SHA256 = name[:64]
	if err := s.engine.RecordIdentity(r.Context(), id, still); err != nil {
		return err
	}
	return s.readiness(w, r, id)
}

// ownIdentity serves the candidate their own identity still (GET /api/attempts/{id}/identity).
func (s *journeyAPI) ownIdentity(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
	return s.serveStill(w, r, id)
}

// identityForStaff serves an attempt's identity still to those who may identify the candidate (GET /api/proctor/attempts/{id}/identity).
func (s *journeyAPI) identityForStaff(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.svc.MayIdentify(r.Context(), a.User, id); err != nil {
		return err
	}
	return s.serveStill(w, r, id)
}

// registerPhoto files a candidate's registered photo (PUT /api/admin/users/{id}/photo).
func (s *journeyAPI) registerPhoto(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.engine.IsCandidate(r.Context(), id); err != nil {
		return err
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, exam.MaxPhoto))
	if err != nil {
		return ErrTooLarge
	}
	if err := exam.CheckPhoto(b); err != nil {
		return err
	}
	name, err := storeByContent(r.Context(), s.photos, b, "jpg")
	if err != nil {
		return err
	}
	if err := s.engine.RegisterPhoto(r.Context(), id, a.User.ID, name); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]string{"photo": name})
}

// photoForStaff serves an attempt's candidate's registered photo to those who may identify them (GET /api/proctor/attempts/{id}/photo).
func (s *journeyAPI) photoForStaff(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.svc.MayIdentify(r.Context(), a.User, id); err != nil {
		return err
	}
	photo, err := s.engine.PhotoOfAttempt(r.Context(), id)
	if err != nil {
		return err
	}
	return servePhoto(w, r, s.photos, photo)
}

// phoneStep records whether the candidate's phone is live (POST /api/attempts/{id}/phone).
func (s *journeyAPI) phoneStep(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
	if err := s.engine.RecordPhone(r.Context(), id, s.av.Live(id, media.Phone)); err != nil {
		return err
	}
	return s.readiness(w, r, id)
}

// confirmSetup records the candidate's set-up checklist (POST /api/attempts/{id}/setup).
func (s *journeyAPI) confirmSetup(w http.ResponseWriter, r *http.Request, a *Auth, id int64) error {
	var req struct {
		Items []string `json:"items"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.engine.ConfirmSetup(r.Context(), id, req.Items); err != nil {
		return err
	}
	return s.readiness(w, r, id)
}

// probeConfig gives the device check's STUN/TURN servers (GET /api/device-check/webrtc).
func (s *journeyAPI) probeConfig(w http.ResponseWriter, r *http.Request, a *Auth) error {
	return WriteJSON(w, http.StatusOK, map[string]any{"ice_servers": s.av.ICEServers()})
}

// probe answers the device check's test publish (POST /api/device-check/webrtc).
func (s *journeyAPI) probe(w http.ResponseWriter, r *http.Request, a *Auth) error {
	var req struct {
		SDP string `json:"sdp"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	id, answer, err := s.av.Probe(ctx, a.User.ID, req.SDP)
	if err != nil {
		return err
	}
	// The test connection lives on this node: its id names the node.
	return WriteJSON(w, http.StatusCreated, map[string]any{"id": s.node.ID() + "." + id, "sdp": answer})
}

// probeResult says whether the test publish's packets arrived, or sends the page to the node that holds it (GET /api/device-check/webrtc/{id}).
func (s *journeyAPI) probeResult(w http.ResponseWriter, r *http.Request, a *Auth) error {
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
	res, err := s.av.ProbeResult(a.User.ID, id)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, res)
}

// admitReady admits every ready candidate of a room (POST /api/proctor/rooms/{id}/admit-ready).
func (s *journeyAPI) admitReady(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	n, err := s.svc.AdmitReady(r.Context(), a.User, id)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]int{"admitted": n})
}
