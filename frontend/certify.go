package frontend

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/store"
)

// Public verification is rate-limited per address: 30 checks in 10 minutes.
const (
	verifyWindow = 10 * time.Minute
	maxVerify    = 30
	// maxDocument is the hard ceiling of an upload's body; the programme's
	// own limit (certify.Policy.MaxUploadBytes) is checked by the domain.
	maxDocument = certify.MaxUploadLimit
)

type certPages struct{ path, admin, panel, certificate, verify, signup *template.Template }

// certPage is what the certificate programme's pages get.
type certPage struct {
	*pageData
	Section   string
	Cert      *certify.Printed
	QR        template.URL
	VerifyURL string
	// Sign-up form: what was typed, and whether to offer the login instead.
	SignupName, SignupID, SignupEmail, SignupMobile string
	LoginInstead                                    bool
}

// certAPI serves the certificate's pages and API; routes are methods below.
type certAPI struct {
	*Server
	svc  *certify.Service
	cert certPages
}

// registerReq registers a candidate (their own, or by an admin) for a level.
type registerReq struct {
	LevelID     int64 `json:"level_id"`
	CandidateID int64 `json:"candidate_id"`
	certify.Applicant
}

// mountCertify puts the certificate programme on the web: the candidate's
// registration and path, the admin's programme page, the panel page, the
// printable certificate and the public verification page.
func (s *Server) mountCertify(svc *certify.Service) error {
	p, err := loadCertPages()
	if err != nil {
		return err
	}
	api := &certAPI{Server: s, svc: svc, cert: p}
	candidate, admin, panel := []store.Role{store.RoleCandidate}, []store.Role{store.RoleAdmin}, []store.Role{store.RolePanel}
	page := func(roles []store.Role, t *template.Template, title, section string) http.Handler {
		return s.page(roles, func(w http.ResponseWriter, r *http.Request, a *Auth) error {
			s.renderCert(w, r, t, &certPage{pageData: &pageData{Title: T(title), CSRF: a.Session.CSRFToken, User: a.User}, Section: section})
			return nil
		})
	}
	s.mux.Handle("GET /register", page(candidate, p.path, "cert.register.title", "register"))
	s.mux.Handle("GET /path", page(candidate, p.path, "cert.path.title", "path"))
	s.mux.Handle("GET /admin/programme", page(admin, p.admin, "cert.admin.title", ""))
	s.mux.Handle("GET /panel", page(panel, p.panel, "cert.panel.title", ""))
	s.mux.Handle("GET /cert/{number}", s.page([]store.Role{store.RoleCandidate, store.RoleAdmin}, api.certificatePage))
	s.mux.HandleFunc("GET /verify", func(w http.ResponseWriter, r *http.Request) {
		s.renderCert(w, r, p.verify, &certPage{pageData: &pageData{Title: T("cert.verify.title")}})
	})
	s.mux.HandleFunc("GET /api/verify", api.verifyCertificate)

	// The candidate's own path.
	s.mux.Handle("GET /api/cert/levels", s.api(nil, api.levels))
	s.mux.Handle("GET /api/cert/path", s.api(candidate, api.path))
	s.mux.Handle("POST /api/cert/registrations", s.api([]store.Role{store.RoleCandidate, store.RoleAdmin}, api.register))
	s.mux.Handle("POST /api/cert/registrations/{id}/retakes", s.api([]store.Role{store.RoleCandidate, store.RoleAdmin}, withID(api.requestRetake)))
	s.mux.Handle("POST /api/cert/sittings/{id}/document", s.uploadGuard(candidate, api.uploadDocument))
	s.mux.Handle("GET /api/cert/sittings/{id}/document", s.api([]store.Role{store.RoleCandidate, store.RolePanel, store.RoleAdmin}, api.document))

	// Panel members.
	s.mux.Handle("GET /api/panel", s.api(panel, api.panelSittings))
	s.mux.Handle("POST /api/panel/{id}/score", s.api(panel, withID(api.score)))
	s.mux.Handle("POST /api/panel/{id}/conflict", s.api(panel, withID(func(r *http.Request, a *Auth, id int64, req struct {
		Reason string `json:"reason"`
	}) (any, error) {
		return nil, svc.DeclareConflict(r.Context(), a.User.ID, id, req.Reason)
	})))

	s.mountCertAdmin(api)
	s.mountSignup(svc, p.signup)
	return nil
}

// loadCertPages parses the certificate programme's page templates.
func loadCertPages() (certPages, error) {
	funcs := template.FuncMap{"t": func(key string, pairs ...string) Text { return T(key, pairs...) }}
	load := func(name string) (*template.Template, error) {
		return template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name)
	}
	var p certPages
	for _, x := range []struct {
		t    **template.Template
		name string
	}{{&p.path, "certpath.html"}, {&p.admin, "certadmin.html"}, {&p.panel, "panel.html"}, {&p.certificate, "certificate.html"}, {&p.verify, "verify.html"}, {&p.signup, "signup.html"}} {
		var err error
		if *x.t, err = load(x.name); err != nil {
			return certPages{}, err
		}
	}
	return p, nil
}

// verifyCertificate is the public check of a certificate, rate-limited per
// address (GET /api/verify).
func (s *certAPI) verifyCertificate(w http.ResponseWriter, r *http.Request) {
	key := "verify:" + clientIP(r)
	n, left, err := s.counters.Hit(r.Context(), key, verifyWindow)
	if err == nil && n > maxVerify {
		err = &RateLimitedError{RetryAfter: left}
	}
	var v *certify.Verification
	if err == nil {
		q := r.URL.Query()
		v, err = s.svc.Verify(r.Context(), q.Get("number"), q.Get("name"), q.Get("id_number"), q.Get("code"))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"certificate": v})
}

// requestRetake opens the retake of a failed component, for the candidate
// or by an admin (POST /api/cert/registrations/{id}/retakes).
func (s *certAPI) requestRetake(r *http.Request, a *Auth, id int64, req struct {
	Component string `json:"component"`
}) (any, error) {
	var own int64
	if a.User.Role == store.RoleCandidate {
		own = a.User.ID
	}
	st, err := s.svc.RequestRetake(r.Context(), a.User.ID, id, req.Component, own)
	if err != nil {
		return nil, err
	}
	return map[string]any{"sitting_id": st.ID, "n": st.N}, nil
}

// score records a panel member's score of a sitting and returns the
// sitting as the member now sees it (POST /api/panel/{id}/score).
func (s *certAPI) score(r *http.Request, a *Auth, id int64, req struct {
	Score   *float64 `json:"score"`
	Comment string   `json:"comment"`
}) (any, error) {
	if req.Score == nil {
		return nil, certify.ErrScore
	}
	if err := s.svc.Score(r.Context(), a.User.ID, id, *req.Score, req.Comment); err != nil {
		return nil, err
	}
	return s.svc.PanelItem(r.Context(), a.User.ID, id)
}

// certificatePage shows a certificate to its holder or an admin (GET /cert/{number}).
func (s *certAPI) certificatePage(w http.ResponseWriter, r *http.Request, a *Auth) error {
	c, err := s.svc.Print(r.Context(), a.User, r.PathValue("number"))
	if err != nil {
		return err
	}
	link := strings.TrimRight(s.baseURL(r), "/") + "/verify?" + url.Values{"number": {c.Number}, "code": {c.Code}}.Encode()
	png, err := qrcode.Encode(link, qrcode.Medium, 256)
	if err != nil {
		return err
	}
	s.renderCert(w, r, s.cert.certificate, &certPage{pageData: &pageData{Title: T("cert.certificate.title"), CSRF: a.Session.CSRFToken, User: a.User},
		Cert: c, QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)), VerifyURL: link})
	return nil
}

// levels lists the programme's levels (GET /api/cert/levels).
func (s *certAPI) levels(w http.ResponseWriter, r *http.Request, a *Auth) error {
	list, err := s.svc.Levels(r.Context())
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"levels": list, "educations": certify.Educations})
}

// path shows a candidate's path through the certificate (GET /api/cert/path).
func (s *certAPI) path(w http.ResponseWriter, r *http.Request, a *Auth) error {
	list, err := s.svc.Path(r.Context(), a.User.ID)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"registrations": list})
}

// register registers a candidate for a level (POST /api/cert/registrations).
func (s *certAPI) register(w http.ResponseWriter, r *http.Request, a *Auth) error {
	var req registerReq
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	reply := map[string]any{}
	var reg *store.Registration
	var err error
	switch {
	case a.User.Role == store.RoleCandidate:
		reg, err = s.svc.Register(r.Context(), a.User.ID, a.User.ID, req.LevelID, req.Applicant)
	case req.CandidateID != 0:
		reg, err = s.svc.Register(r.Context(), a.User.ID, req.CandidateID, req.LevelID, req.Applicant)
	default:
		var login certify.Login
		reg, login, err = s.svc.RegisterNew(r.Context(), a.User.ID, req.LevelID, req.Applicant)
		reply["login"] = login
	}
	if err != nil {
		return err
	}
	reply["registration_id"] = reg.ID
	return WriteJSON(w, http.StatusCreated, reply)
}

// uploadDocument takes a candidate's practical plan or review materials (POST /api/cert/sittings/{id}/document).
func (s *certAPI) uploadDocument(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	// Whose sitting and how large, before a byte of the body is read.
	limit, err := s.svc.UploadLimit(r.Context(), a.User.ID, id)
	if err != nil {
		return err
	}
	limit = min(limit, maxDocument)
	if r.ContentLength > limit {
		return fmt.Errorf("%w: %d bytes, at most %d", certify.ErrFileTooLarge, r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return fmt.Errorf("%w: at most %d bytes", certify.ErrFileTooLarge, limit)
	}
	st, err := s.svc.Submit(r.Context(), a.User.ID, id, r.URL.Query().Get("name"), body)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusCreated, map[string]any{"sitting_id": st.ID, "file_name": st.FileName, "file_type": st.FileType,
		"file_size": st.FileSize, "sha256": st.FileSHA256, "submitted_at": st.SubmittedAt})
}

// document serves a sitting's document to its candidate, its panel and admins (GET /api/cert/sittings/{id}/document).
func (s *certAPI) document(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	path, name, kind, err := s.svc.Document(r.Context(), a.User, id)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	ct := "application/pdf"
	if kind == certify.DOCX {
		ct = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", "attachment; filename*=UTF-8''"+url.PathEscape(name))
	w.Header().Set("Cache-Control", "no-store")
	_, err = io.Copy(w, f)
	return err
}

// panelSittings lists the sittings of the panels the member sits on (GET /api/panel).
func (s *certAPI) panelSittings(w http.ResponseWriter, r *http.Request, a *Auth) error {
	list, err := s.svc.PanelQueue(r.Context(), a.User.ID)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"sittings": list})
}

// mountCertAdmin puts the admin's API of the certificate programme on the
// web: the queues, the panels, retakes and revocations, the rules screen and
// the cohort import.
func (s *Server) mountCertAdmin(api *certAPI) {
	svc := api.svc
	admin := []store.Role{store.RoleAdmin}
	handle := func(pattern string, h APIHandler) { s.mux.Handle(pattern, s.api(admin, h)) }
	list := func(name string, f func(ctx context.Context) (any, error)) APIHandler {
		return func(w http.ResponseWriter, r *http.Request, a *Auth) error {
			v, err := f(r.Context())
			if err != nil {
				return err
			}
			return WriteJSON(w, http.StatusOK, map[string]any{name: v})
		}
	}
	handle("GET /api/admin/cert/registrations", list("registrations", func(ctx context.Context) (any, error) { return svc.Registrations(ctx) }))
	handle("GET /api/admin/cert/panels", list("sittings", func(ctx context.Context) (any, error) { return svc.PanelQueue(ctx, 0) }))
	handle("GET /api/admin/cert/retakes", list("retakes", func(ctx context.Context) (any, error) { return svc.RetakeQueue(ctx) }))
	handle("GET /api/admin/cert/attention", list("certificates", func(ctx context.Context) (any, error) { return svc.NeedsAttention(ctx) }))
	handle("GET /api/admin/cert/reviewers", list("reviewers", func(ctx context.Context) (any, error) { return svc.PanelMembers(ctx) }))
	handle("PUT /api/admin/cert/reviewers/{id}/affiliation", withID(func(r *http.Request, a *Auth, id int64, req struct {
		Organisation string `json:"organisation"`
	}) (any, error) {
		return nil, svc.SetAffiliation(r.Context(), a.User.ID, id, req.Organisation)
	}))
	handle("POST /api/admin/cert/fees/{id}/paid", withID(func(r *http.Request, a *Auth, id int64, req struct {
		Reference string `json:"reference"`
	}) (any, error) {
		return nil, svc.MarkPaid(r.Context(), a.User.ID, id, "manual", req.Reference)
	}))
	handle("POST /api/admin/cert/registrations/{id}/seat", withID(api.seatRegistration))
	handle("POST /api/admin/cert/sittings/{id}/panel", withID(func(r *http.Request, a *Auth, id int64, req struct {
		Members []int64 `json:"members"`
	}) (any, error) {
		return nil, svc.FormPanel(r.Context(), a.User.ID, id, req.Members)
	}))
	handle("POST /api/admin/cert/sittings/{id}/defence", withID(func(r *http.Request, a *Auth, id int64, req struct {
		At time.Time `json:"at"`
	}) (any, error) {
		return nil, svc.ScheduleDefence(r.Context(), a.User.ID, id, req.At)
	}))
	handle("POST /api/admin/cert/retakes/{id}/place", withID(api.placeRetakes))
	handle("POST /api/admin/cert/certificates/revoke", api.revoke)
	// The rules screen: a programme's rules and its levels' settings.
	handle("GET /api/admin/programmes/{id}/rules", api.programmeRules)
	handle("PUT /api/admin/programmes/{id}/rules", withID(func(r *http.Request, a *Auth, id int64, change json.RawMessage) (any, error) {
		return svc.SetRules(r.Context(), a.User.ID, id, change)
	}))
	handle("PUT /api/admin/levels/{id}", withID(func(r *http.Request, a *Auth, id int64, change json.RawMessage) (any, error) {
		return svc.SetLevel(r.Context(), a.User.ID, id, change)
	}))
	handle("POST /api/admin/cert/programmes/{id}/import", api.importCohort)
}

// seatRegistration seats a registration's theory sitting in an exam session (POST /api/admin/cert/registrations/{id}/seat).
func (s *certAPI) seatRegistration(r *http.Request, a *Auth, id int64, req struct {
	SessionID int64 `json:"session_id"`
}) (any, error) {
	seat, err := s.svc.Seat(r.Context(), a.User.ID, id, req.SessionID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"ticket": seat.Ticket, "seat_id": seat.ID}, nil
}

// placeRetakes seats a level's waiting theory retakes, in a new dedicated
// session or the next scheduled one (POST /api/admin/cert/retakes/{id}/place).
func (s *certAPI) placeRetakes(r *http.Request, a *Auth, id int64, req struct {
	Dedicated bool             `json:"dedicated"`
	Session   exam.SessionSpec `json:"session"`
}) (any, error) {
	sid, n, err := s.svc.PlaceRetakes(r.Context(), a.User.ID, id, req.Dedicated, req.Session)
	if err != nil {
		return nil, err
	}
	return map[string]any{"session_id": sid, "placed": n}, nil
}

// revoke revokes a certificate by its number, with a reason (POST /api/admin/cert/certificates/revoke).
func (s *certAPI) revoke(w http.ResponseWriter, r *http.Request, a *Auth) error {
	var req struct{ Number, Reason string }
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.svc.Revoke(r.Context(), a.User.ID, req.Number, req.Reason); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// programmeRules shows a programme's rules and its levels' settings (GET /api/admin/programmes/{id}/rules).
func (s *certAPI) programmeRules(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	rules, err := s.svc.Rules(r.Context(), id)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, rules)
}

// importCohort registers a training organisation's cohort from a CSV body (POST /api/admin/cert/programmes/{id}/import).
func (s *certAPI) importCohort(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	rows, err := parseCohortCSV(r.Body)
	if err != nil {
		return err
	}
	out, err := s.svc.Import(r.Context(), a.User.ID, id, rows)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusCreated, map[string]any{"imported": out})
}

// parseCohortCSV reads a cohort: a header line, then level, name,
// id_number, education, training_hours, organisation per line, and
// optionally email and mobile (where the candidate's notices go).
func parseCohortCSV(body io.Reader) ([]certify.Row, error) {
	cr := csv.NewReader(body)
	cr.FieldsPerRecord = 0 // every line as long as the header
	recs, err := cr.ReadAll()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrTooLarge
		}
		return nil, &certify.ImportError{Lines: []certify.LineError{{Line: 0, Code: "csv", Error: err.Error()}}}
	}
	if len(recs) < 2 {
		return nil, &certify.ImportError{Lines: []certify.LineError{{Line: 1, Code: "csv", Error: "a header and at least one line"}}}
	}
	if n := len(recs[0]); n != 6 && n != 8 {
		return nil, &certify.ImportError{Lines: []certify.LineError{{Line: 1, Code: "csv", Error: "6 columns (level, name, id_number, education, training_hours, organisation), or 8 with email and mobile"}}}
	}
	rows := make([]certify.Row, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		hours, _ := strconv.Atoi(strings.TrimSpace(rec[4]))
		a := certify.Applicant{Name: rec[1], IDNumber: rec[2], Education: strings.TrimSpace(rec[3]), TrainingHours: hours, Organisation: rec[5]}
		if len(rec) == 8 {
			a.Email, a.Mobile = rec[6], rec[7]
		}
		rows = append(rows, certify.Row{Level: strings.TrimSpace(strings.TrimPrefix(rec[0], "\uFEFF")), Applicant: a})
	}
	return rows, nil
}

// uploadGuard is api for a raw upload body larger than the API's 1 MiB: the
// role and the CSRF header are checked before the body is read.
func (s *Server) uploadGuard(roles []store.Role, h APIHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, sess, err := s.authenticate(r)
		if err == nil && !allowed(u.Role, roles) {
			err = ErrForbidden
		}
		if err == nil && r.Header.Get(csrfHeader) == "" {
			err = ErrCSRF
		}
		if err == nil {
			err = checkCSRF(r, sess)
		}
		if err == nil {
			err = h(w, r, &Auth{User: u, Session: sess})
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

func (s *Server) renderCert(w http.ResponseWriter, r *http.Request, t *template.Template, d *certPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := t.Execute(w, d); err != nil {
		s.log.ErrorContext(r.Context(), "render page", "path", r.URL.Path, "err", err)
	}
}
