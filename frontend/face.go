package frontend

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

// Where the browser's face analysis files are inside FaceModels (an npm
// node_modules folder), and the URLs they are served at.
var faceVendor = []struct{ url, dir, probe string }{
	{"/vendor/human/", "@vladmandic/human/dist", "human.esm.js"},
	{"/vendor/human/models/", "@vladmandic/human/models", "facemesh.json"},
	{"/vendor/tfjs-wasm/", "@tensorflow/tfjs-backend-wasm/dist", "tfjs-backend-wasm-simd.wasm"},
}

// faceKinds are the kinds a page may attach a still to, and "enrol": the
// device check's frame the page compares the candidate's face with.
var faceKinds = map[string]bool{proctor.FaceAbsent: true, proctor.FacesMultiple: true, proctor.FaceOccluded: true, proctor.HeadTurned: true, "enrol": true}

// maxStill bounds an uploaded evidence frame.
const maxStill = 256 << 10

// mountFaceModels serves Human and the tfjs wasm backend from disk when
// they are installed (make does it with npm), and says so in the log.
func (s *Server) mountFaceModels() {
	dir := s.cfg.FaceModels
	for _, v := range faceVendor {
		if _, err := os.Stat(filepath.Join(dir, v.dir, v.probe)); dir == "" || err != nil {
			s.log.Warn("browser face analysis is off: its model files are not installed (run make, which runs npm ci in frontend/); the server's face check still runs",
				"face_models", dir, "missing", filepath.Join(v.dir, v.probe))
			return
		}
	}
	for _, v := range faceVendor {
		fs := http.StripPrefix(v.url, http.FileServer(http.Dir(filepath.Join(dir, v.dir))))
		s.mux.Handle("GET "+v.url, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/") {
				http.NotFound(w, r) // no listings
				return
			}
			w.Header().Set("Cache-Control", "public, max-age=86400")
			fs.ServeHTTP(w, r)
		}))
	}
	s.faceOn = true
	s.log.Info("browser face analysis is on", "face_models", dir)
}

// mountStills takes the page's evidence frames and serves every still to
// the staff who may watch the candidate.
func (s *Server) mountStills(svc *proctor.Service, engine *exam.Engine) {
	candidate := []store.Role{store.RoleCandidate}
	s.mux.Handle("POST /api/attempts/{id}/stills", s.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		kind := r.URL.Query().Get("kind")
		if !faceKinds[kind] {
			return ErrBadRequest
		}
		if err := engine.Owns(r.Context(), a.User.ID, id); err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxStill+1))
		if err != nil || len(b) > maxStill {
			return ErrTooLarge
		}
		if !bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff}) {
			return ErrBadRequest // JPEG only
		}
		names, err := s.stills.List(r.Context(), fmt.Sprint(id), ".jpg")
		if err != nil {
			return err
		}
		if len(slices.DeleteFunc(names, func(n string) bool { return !strings.Contains(n, "-page-") })) >= proctor.MaxStillsPerAttempt {
			return proctor.ErrTooManyStills
		}
		// <ms>-page-<kind>.jpg, next to the server's own stills.
		ms := time.Now().UnixMilli()
		name, err := s.stills.Create(r.Context(), fmt.Sprint(id), func(n int) string { return fmt.Sprintf("%d-page-%s.jpg", ms+int64(n), kind) }, b)
		if err != nil {
			return err
		}
		return WriteJSON(w, http.StatusCreated, map[string]string{"still": name})
	}))
	// The candidate's own enrolment frame, for the exam page's baseline.
	s.mux.Handle("GET /api/attempts/{id}/enrol", s.api(candidate, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		if err := engine.Owns(r.Context(), a.User.ID, id); err != nil {
			return err
		}
		names, err := s.stills.List(r.Context(), fmt.Sprint(id), "-page-enrol.jpg") // by time
		if err != nil {
			return err
		}
		if len(names) == 0 {
			return store.ErrNotFound
		}
		return serveFile(w, r, s.stills, fmt.Sprintf("%d/%s", id, names[len(names)-1]), "private, no-store")
	}))
	s.mux.Handle("GET /api/attempts/{id}/stills/{name}", s.api([]store.Role{store.RoleReviewer, store.RoleAdmin, store.RoleInvigilator},
		func(w http.ResponseWriter, r *http.Request, a *Auth) error {
			id, err := pathID(r)
			if err != nil {
				return err
			}
			name := r.PathValue("name")
			if !proctor.ValidStill(name) {
				return store.ErrNotFound
			}
			if err := svc.MayWatch(r.Context(), a.User, id); err != nil {
				return err
			}
			return serveFile(w, r, s.stills, fmt.Sprintf("%d/%s", id, name), "private, no-store")
		}))
}
