package frontend

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

// examAdmin serves the admin's exam API; each route is a method below.
type examAdmin struct {
	*Server
	engine *exam.Engine
}

// mountExamAdmin adds the admin's exam API: banks, blueprints, sessions,
// results and statistics, and key corrections.
func (s *Server) mountExamAdmin(engine *exam.Engine) {
	x := &examAdmin{Server: s, engine: engine}
	admin := []store.Role{store.RoleAdmin}
	handle := func(pattern string, h APIHandler) { s.mux.Handle(pattern, s.api(admin, h)) }

	handle("GET /api/admin/programmes", x.listProgrammes)
	handle("GET /api/admin/programmes/{id}/questions", x.exportBank)
	handle("POST /api/admin/programmes/{id}/questions", x.importBank)
	handle("PUT /api/admin/questions/{id}/key", x.correctKey)
	handle("PUT /api/admin/questions/{id}/pool", withID(func(r *http.Request, a *Auth, id int64, req struct {
		Pool string `json:"pool"`
	}) (any, error) {
		return nil, x.engine.SetQuestionPool(r.Context(), id, req.Pool, a.User.ID)
	}))
	handle("GET /api/admin/exams", x.listExams)
	handle("PUT /api/admin/exams/{id}", x.updateExam)
	handle("GET /api/admin/sessions", x.listSessions)
	handle("POST /api/admin/sessions", x.createSession)
	handle("PUT /api/admin/sessions/{id}/admission", withID(func(r *http.Request, a *Auth, id int64, req struct {
		Mode string `json:"mode"`
	}) (any, error) {
		return nil, x.engine.SetAdmissionMode(r.Context(), id, req.Mode, a.User.ID)
	}))
	handle("POST /api/admin/sessions/{id}/schedule", x.scheduleSession)
	handle("GET /api/admin/sessions/{id}/results", x.sessionResults)
	handle("GET /api/admin/sessions/{id}/stats", x.sessionStats)
}

// listProgrammes lists the programmes with the size of their banks (GET /api/admin/programmes).
func (s *examAdmin) listProgrammes(w http.ResponseWriter, r *http.Request, a *Auth) error {
	list, err := s.engine.Programmes(r.Context())
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"programmes": list})
}

// exportBank lists a programme's bank with ids and keys, or downloads it as CSV or JSON (GET /api/admin/programmes/{id}/questions).
func (s *examAdmin) exportBank(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	rows, err := s.engine.Bank(r.Context(), id)
	if err != nil {
		return err
	}
	qs := make([]exam.Question, len(rows))
	for i, row := range rows {
		qs[i] = exam.FromRow(row)
	}
	switch r.URL.Query().Get("format") {
	case "csv":
		attachment(w, fmt.Sprintf("bank-%d.csv", id), "text/csv; charset=utf-8")
		w.Write([]byte("\uFEFF")) // so spreadsheet programs read UTF-8
		return exam.WriteBankCSV(w, qs)
	case "json":
		attachment(w, fmt.Sprintf("bank-%d.json", id), "application/json; charset=utf-8")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(qs)
	}
	type listed struct {
		ID int64 `json:"id"`
		exam.Question
	}
	out := make([]listed, len(rows))
	for i := range rows {
		out[i] = listed{rows[i].ID, qs[i]}
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"questions": out})
}

// importBank imports a bank file, all or nothing (POST /api/admin/programmes/{id}/questions).
func (s *examAdmin) importBank(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 8<<20))
	if err != nil {
		return ErrTooLarge
	}
	body = bytes.TrimPrefix(body, []byte("\uFEFF"))
	var qs []exam.Question
	var lines []exam.LineError
	if r.URL.Query().Get("format") == "csv" {
		qs, lines = exam.ParseBankCSV(bytes.NewReader(body))
	} else {
		qs, lines = exam.ParseBankJSON(body)
	}
	if len(lines) > 0 {
		return &exam.ErrImport{Lines: lines}
	}
	n, err := s.engine.ImportQuestions(r.Context(), id, a.User.ID, qs)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusCreated, map[string]int{"imported": n})
}

// correctKey corrects a key and regrades every ended attempt with the question (PUT /api/admin/questions/{id}/key).
func (s *examAdmin) correctKey(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req struct {
		Answer []int  `json:"answer"`
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	rep, err := s.engine.CorrectKey(r.Context(), id, req.Answer, a.User.ID, req.Reason)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, rep)
}

// listExams lists the exams with their blueprints and policies (GET /api/admin/exams).
func (s *examAdmin) listExams(w http.ResponseWriter, r *http.Request, a *Auth) error {
	list, err := s.engine.Exams(r.Context())
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"exams": list})
}

// updateExam changes an exam's blueprint and policy (PUT /api/admin/exams/{id}).
func (s *examAdmin) updateExam(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req struct {
		Blueprint exam.Blueprint `json:"blueprint"`
		Policy    exam.Policy    `json:"policy"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.engine.UpdateExam(r.Context(), id, req.Blueprint, req.Policy, a.User.ID); err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// listSessions lists the sessions with their seats, attempts and storage estimate (GET /api/admin/sessions).
func (s *examAdmin) listSessions(w http.ResponseWriter, r *http.Request, a *Auth) error {
	list, err := s.engine.Sessions(r.Context())
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]any{"sessions": list})
}

// createSession creates a session (POST /api/admin/sessions).
func (s *examAdmin) createSession(w http.ResponseWriter, r *http.Request, a *Auth) error {
	var spec exam.SessionSpec
	if err := decodeJSON(r, &spec); err != nil {
		return err
	}
	id, err := s.engine.CreateSession(r.Context(), spec, a.User.ID)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusCreated, map[string]int64{"id": id})
}

// scheduleSession draws a paper for every seat that has none (POST /api/admin/sessions/{id}/schedule).
func (s *examAdmin) scheduleSession(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	n, err := s.engine.Schedule(r.Context(), id, a.User.ID)
	if err != nil {
		return err
	}
	return WriteJSON(w, http.StatusOK, map[string]int{"papers": n})
}

// sessionResults lists or downloads a session's results (GET /api/admin/sessions/{id}/results).
func (s *examAdmin) sessionResults(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	rows, err := s.engine.SessionResults(r.Context(), id)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("format") != "csv" {
		return WriteJSON(w, http.StatusOK, map[string]any{"results": rows})
	}
	attachment(w, fmt.Sprintf("results-%d.csv", id), "text/csv; charset=utf-8")
	w.Write([]byte("\uFEFF"))
	cw := sheetWriter{csv.NewWriter(w)}
	cw.Write([]string{"准考证号 ticket", "姓名 name", "考场 room", "状态 status", "开始 started", "结束 ended", "成绩 score", "通过 passed", "补时秒 credited_seconds"})
	for _, row := range rows {
		cw.Write([]string{row.Ticket, row.Name, row.Room, row.Status, fmtTime(row.StartedAt), fmtTime(row.EndedAt), fmtFloat(row.Score), fmtBool(row.Passed), strconv.Itoa(row.Credited)})
	}
	cw.Flush()
	return cw.Error()
}

// sessionStats lists or downloads a session's statistics per question (GET /api/admin/sessions/{id}/stats).
func (s *examAdmin) sessionStats(w http.ResponseWriter, r *http.Request, a *Auth) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	stats, err := s.engine.SessionStats(r.Context(), id)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("format") != "csv" {
		return WriteJSON(w, http.StatusOK, map[string]any{"questions": stats})
	}
	attachment(w, fmt.Sprintf("stats-%d.csv", id), "text/csv; charset=utf-8")
	w.Write([]byte("\uFEFF"))
	cw := sheetWriter{csv.NewWriter(w)}
	cw.Write([]string{"题号 question_id", "题型 kind", "题干 stem", "出现 on_papers", "作答 answered", "全对 correct", "平均得分 avg_points", "难度系数 facility"})
	for _, q := range stats {
		cw.Write([]string{strconv.FormatInt(q.QuestionID, 10), q.Kind, q.Stem, strconv.Itoa(q.OnPapers), strconv.Itoa(q.Answered), strconv.Itoa(q.Correct),
			strconv.FormatFloat(q.AvgPoints, 'f', -1, 64), strconv.FormatFloat(q.Facility, 'f', -1, 64)})
	}
	cw.Flush()
	return cw.Error()
}

// withID makes a handler of a route with an {id} and a JSON body: it reads
// both, calls f, and answers what f returns ({"ok": true} for nil).
func withID[Req any](f func(r *http.Request, a *Auth, id int64, req Req) (any, error)) APIHandler {
	return func(w http.ResponseWriter, r *http.Request, a *Auth) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		var req Req
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
		out, err := f(r, a, id, req)
		if err != nil {
			return err
		}
		if out == nil {
			out = map[string]bool{"ok": true}
		}
		return WriteJSON(w, http.StatusOK, out)
	}
}

// pathID reads the {id} of a route.
func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, store.ErrNotFound
	}
	return id, nil
}

// decodeJSON reads a JSON body of at most 1 MiB into v.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return ErrTooLarge
		}
		return fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return nil
}

func attachment(w http.ResponseWriter, name, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtFloat(f *float64) string {
	if f == nil {
		return ""
	}
	return strconv.FormatFloat(*f, 'f', -1, 64)
}

func fmtBool(b *bool) string {
	if b == nil {
		return ""
	}
	return strconv.FormatBool(*b)
}
