package frontend

import (
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

// vendorDir is a folder of an npm package (inside FaceModels, a
// node_modules folder) served at a URL; probe is a file it must hold.
type vendorDir struct{ url, dir, probe string }

// Where the browser's face analysis files are: Human and the tfjs wasm
// backend.
var faceVendor = []vendorDir{
	{"/vendor/human/", "@vladmandic/human/dist", "human.esm.js"},
	{"/vendor/human/models/", "@vladmandic/human/models", "facemesh.json"},
	{"/vendor/tfjs-wasm/", "@tensorflow/tfjs-backend-wasm/dist", "tfjs-backend-wasm-simd.wasm"},
}

// Where the browser's voice activity detection files are: vad-web with
// the Silero model, and onnxruntime-web's wasm build that runs it.
var voiceVendor = []vendorDir{
	{"/vendor/vad/", "@ricky0123/vad-web/dist", "silero_vad_v5.onnx"},
	{"/vendor/ort/", "onnxruntime-web/dist", "ort-wasm-simd-threaded.wasm"},
}

// maxStill bounds an uploaded evidence frame.
const maxStill = 256 << 10

// mountFaceModels serves the browser's face analysis and voice activity
// detection from disk when they are installed (make does it with npm), and
// says so in the log.
func (s *Server) mountFaceModels() {
	s.faceOn = s.mountVendor(faceVendor, "browser face analysis", "the server's face check still runs")
	s.voiceOn = s.mountVendor(voiceVendor, "browser voice detection", "the exam page will not report talking")
}

// mountVendor serves dirs when every probe is there, and logs whether the
// browser's analysis (what) is on.
func (s *Server) mountVendor(dirs []vendorDir, what, meanwhile string) bool {
	dir := s.cfg.FaceModels
	for _, v := range dirs {
		if _, err := os.Stat(filepath.Join(dir, v.dir, v.probe)); dir == "" || err != nil {
			s.log.Warn(what+" is off: its model files are not installed (run make, which runs npm ci in frontend/); "+meanwhile,
				"face_models", dir, "missing", filepath.Join(v.dir, v.probe))
			return false
		}
	}
	for _, v := range dirs {
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
	s.log.Info(what+" is on", "face_models", dir)
	return true
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
		if proctor.EvidenceExt(kind) == "" {
			return ErrBadRequest
		}
		if err := engine.Owns(r.Context(), a.User.ID, id); err != nil {
			return err
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxStill+1))
		if err != nil || len(b) > maxStill {
			return ErrTooLarge
		}
		ext, ok := proctor.CheckEvidence(kind, b)
		if !ok {
			return ErrBadRequest // a JPEG, or a WAV for talking
		}
		names, err := s.stills.List(r.Context(), fmt.Sprint(id), "")
		if err != nil {
			return err
		}
		if len(slices.DeleteFunc(names, func(n string) bool { return !strings.Contains(n, "-page-") })) >= proctor.MaxStillsPerAttempt {
			return proctor.ErrTooManyStills
		}
		// <ms>-page-<kind>.<ext>, next to the server's own stills.
		ms := time.Now().UnixMilli()
		name, err := s.stills.Create(r.Context(), fmt.Sprint(id), func(n int) string { return fmt.Sprintf("%d-page-%s.%s", ms+int64(n), kind, ext) }, b)
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
