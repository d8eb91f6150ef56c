package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/accounts"
	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/store"
)

// certEnv is an examEnv whose programme has the certificate's three levels,
// its formal exam being the intermediate theory exam, with two candidate
// accounts that hold no seat yet and three reviewers.
type certEnv struct {
	*examEnv
	levels    map[string]int64
	alice     cand
	bob       cand
	reviewers []cand
}

func newCertEnv(t *testing.T, rules string) *certEnv {
	e := &certEnv{examEnv: newExamEnv(t, "sqlite", 0), levels: map[string]int64{}}
	e.db.Model(&store.Programme{}).Where("id = ?", e.exam.ProgrammeID).Updates(map[string]any{"rules": rules, "code": "KFZX"})
	for _, l := range exam.DefaultLevels {
		comps, _ := json.Marshal(l.Components)
		lv := &store.Level{ProgrammeID: e.exam.ProgrammeID, Code: l.Code, Rank: l.Rank, NameZh: l.NameZh, NameEn: l.NameEn,
			TrainingHours: l.TrainingHours, FeeCents: l.FeeCents, Components: string(comps)}
		if err := e.db.Create(lv).Error; err != nil {
			t.Fatal(err)
		}
		e.levels[l.Code] = lv.ID
	}
	e.db.Model(&store.Exam{}).Where("id = ?", e.exam.ID).Update("level_id", e.levels["intermediate"])
	account := func(role store.Role, username, name string) cand {
		c := cand{ticket: username, password: "password of " + username}
		if role == store.RoleCandidate {
			c.password = accounts.NewCandidatePassword()
		}
		h, _ := accounts.HashPassword(c.password, role, accounts.Chosen)
		u := &store.User{Role: role, Username: username, PasswordHash: h, DisplayName: name}
		if err := e.db.Create(u).Error; err != nil {
			t.Fatal(err)
		}
		c.id = u.ID
		return c
	}
	e.alice = account(store.RoleCandidate, "2026900001", "王小明")
	e.bob = account(store.RoleCandidate, "2026900002", "李四")
	e.reviewers = []cand{account(store.RolePanel, "panel1", "评审专家一"), account(store.RolePanel, "panel2", "评审专家二"), account(store.RolePanel, "panel3", "评审专家三")}
	return e
}

func idNumber(first17 string) string { return first17 + string(certify.IDCheckChar(first17)) }

var aliceID = idNumber("11010519900307123")

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func errCode(b []byte) string {
	var r struct {
		Error struct{ Code string } `json:"error"`
	}
	json.Unmarshal(b, &r)
	return r.Error.Code
}

// expect checks a reply's status and, when given, its error code.
func expect(t *testing.T, what string, code int, body []byte, wantStatus int, wantCode string) {
	t.Helper()
	if code != wantStatus || (wantCode != "" && errCode(body) != wantCode) {
		t.Fatalf("%s: %d %s, want %d %s", what, code, body, wantStatus, wantCode)
	}
}

// path is the candidate's path as the API gives it.
func (e *certEnv) path(hc *http.Client) []certify.RegistrationView {
	code, b := call(e.t, e.examEnv, hc, "GET", "/api/cert/path", nil)
	expect(e.t, "path", code, b, 200, "")
	return decode[struct{ Registrations []certify.RegistrationView }](e.t, b).Registrations
}

// passTheory answers every question of the candidate's attempt with its key
// over the exam socket and submits.
func (e *certEnv) passTheory(hc *http.Client, attempt int64) {
	e.t.Helper()
	c, resp, err := e.dial(hc, attempt)
	if err != nil {
		e.t.Fatalf("dial: %v %v", err, resp)
	}
	for i, q := range questions(c.start()) {
		id := int64(q["id"].(float64))
		c.send(map[string]any{"type": "answer", "seq": i + 1, "question": id, "value": e.keys[id]})
		c.await("ack", is("ack", "seq", i+1))
	}
	c.send(map[string]any{"type": "submit", "id": "sub"})
	c.await("ended", is("ended"))
	waitStatus(e.t, e.examEnv, attempt, exam.StatusSubmitted)
}

// registerPaidSeated registers alice for the intermediate level through the
// API, has the admin mark the fee paid and seat her, and returns her client
// and the registration.
func (e *certEnv) registerPaidSeated(t *testing.T) (*http.Client, certify.RegistrationView) {
	alice, admin := e.login(e.alice), e.login(e.admin)
	code, b := call(t, e.examEnv, alice, "POST", "/api/cert/registrations", map[string]any{"level_id": e.levels["intermediate"],
		"name": "王小明", "id_number": aliceID, "education": "bachelor", "training_hours": 80, "organisation": "北京培训中心"})
	expect(t, "register", code, b, 201, "")
	reg := e.path(alice)[0]
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/fees/%d/paid", reg.Fees[0].ID), map[string]string{"reference": "RCPT-001"})
	expect(t, "mark paid", code, b, 200, "")
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/registrations/%d/seat", reg.ID), map[string]int64{"session_id": e.session})
	expect(t, "seat", code, b, 200, "")
	return alice, e.path(alice)[0]
}

// Registration refusals name the rule; roles and other people's objects are
// refused; seating waits for the fee.
func TestCertRegistrationAPI(t *testing.T) {
	e := newCertEnv(t, "{}")
	alice, bob, admin := e.login(e.alice), e.login(e.bob), e.login(e.admin)
	reg := map[string]any{"level_id": e.levels["intermediate"], "name": "王小明", "id_number": aliceID, "education": "bachelor", "training_hours": 80}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for k, v := range reg {
			m[k] = v
		}
		m[k] = v
		return m
	}
	for _, c := range []struct {
		what   string
		body   map[string]any
		status int
		code   string
	}{
		{"a wrong check digit", with("id_number", aliceID[:17]+"0"), 400, "id_number"},
		{"too few hours", with("training_hours", 71), 422, "rule_training_hours"},
		{"junior high school", with("education", "junior_high"), 422, "rule_education"},
		{"no such level", with("level_id", 9999), 400, "unknown_level"},
	} {
		code, b := call(t, e.examEnv, alice, "POST", "/api/cert/registrations", c.body)
		expect(t, c.what, code, b, c.status, c.code)
	}
	if n := len(e.path(alice)); n != 0 {
		t.Fatalf("refused registrations left %d behind", n)
	}
	code, b := call(t, e.examEnv, alice, "POST", "/api/cert/registrations", reg)
	expect(t, "register", code, b, 201, "")
	code, b = call(t, e.examEnv, alice, "POST", "/api/cert/registrations", reg)
	expect(t, "register twice", code, b, 409, "rule_already_registered")
	path := e.path(alice)
	if len(path) != 1 || path[0].OwedCents != 1200_00 || len(e.path(bob)) != 0 {
		t.Fatalf("paths: %+v / %+v", path, e.path(bob))
	}
	fee, regID := path[0].Fees[0].ID, path[0].ID

	for _, c := range []struct {
		who          *http.Client
		method, path string
		body         any
	}{
		{alice, "POST", fmt.Sprintf("/api/admin/cert/fees/%d/paid", fee), map[string]string{"reference": "X"}},
		{alice, "POST", fmt.Sprintf("/api/admin/cert/registrations/%d/seat", regID), map[string]int64{"session_id": e.session}},
		{alice, "GET", "/api/admin/cert/registrations", nil},
		{alice, "POST", "/api/panel/1/score", map[string]any{"score": 90, "comment": "x"}},
		{e.login(e.reviewers[0]), "POST", "/api/cert/registrations", reg},
		{e.login(e.invA), "GET", "/api/cert/path", nil},
	} {
		code, b := call(t, e.examEnv, c.who, c.method, c.path, c.body)
		expect(t, c.method+" "+c.path, code, b, 403, "forbidden")
	}
	code, b = call(t, e.examEnv, bob, "POST", fmt.Sprintf("/api/cert/registrations/%d/retakes", regID), map[string]string{"component": "theory"})
	expect(t, "a retake of another's registration", code, b, 404, "not_found")

	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/registrations/%d/seat", regID), map[string]int64{"session_id": e.session})
	expect(t, "seat before payment", code, b, 409, "rule_fee_unpaid")
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/fees/%d/paid", fee), map[string]string{"reference": ""})
	expect(t, "payment without a receipt", code, b, 400, "receipt_required")
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/fees/%d/paid", fee), map[string]string{"reference": "RCPT-001"})
	expect(t, "mark paid", code, b, 200, "")
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/registrations/%d/seat", regID), map[string]int64{"session_id": e.session})
	expect(t, "seat", code, b, 200, "")
	ticket := decode[struct{ Ticket string }](t, b).Ticket
	var seat store.Seat
	e.db.Where("ticket = ?", ticket).Take(&seat)
	if seat.InvigilatorID == nil || (*seat.InvigilatorID != e.invA.id && *seat.InvigilatorID != e.invB.id && *seat.InvigilatorID != e.chief.id && *seat.InvigilatorID != e.invD.id) {
		t.Fatalf("the seat has no responsible invigilator of its room: %+v", seat)
	}
	if p := e.path(alice)[0]; p.OwedCents != 0 || p.Components[0].Sittings[0].Ticket != ticket || p.Components[0].Sittings[0].AttemptID == 0 {
		t.Fatalf("after seating: %+v", p.Components[0])
	}
	for _, action := range []string{"fee_paid", "seated", "registered"} {
		var n int64
		e.db.Model(&store.AuditEvent{}).Where("action = ? AND actor_id IS NOT NULL", action).Count(&n)
		if n != 1 {
			t.Errorf("%d audit events %s, want 1", n, action)
		}
	}

	// An admin registers on someone's behalf (an account is made) and
	// imports a cohort, all or none.
	code, b = call(t, e.examEnv, admin, "POST", "/api/cert/registrations", map[string]any{"level_id": e.levels["junior"], "name": "赵六",
		"id_number": idNumber("44030519851212456"), "education": "high_school", "training_hours": 48})
	expect(t, "admin registers", code, b, 201, "")
	login := decode[struct{ Login certify.Login }](t, b).Login
	if login.Username == "" || login.Password == "" {
		t.Fatalf("no login: %s", b)
	}
	e.login(cand{ticket: login.Username, password: login.Password})
	csv := "level,name,id_number,education,training_hours,organisation\n" +
		"junior,孙七," + idNumber("31010119951010789") + ",associate,60,甲培训学校\n" +
		"senior,周八," + idNumber("51010119880808321") + ",bachelor,100,甲培训学校\n"
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/programmes/%d/import", e.exam.ProgrammeID), []byte(csv))
	expect(t, "an import with a line below the hours", code, b, 400, "import_invalid")
	if !strings.Contains(string(b), `"line":3`) || !strings.Contains(string(b), "rule_training_hours") {
		t.Fatalf("import errors do not name the line and rule: %s", b)
	}
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/programmes/%d/import", e.exam.ProgrammeID), []byte(strings.Replace(csv, ",100,", ",108,", 1)))
	expect(t, "import", code, b, 201, "")
	if n := len(decode[struct{ Imported []certify.Imported }](t, b).Imported); n != 2 {
		t.Fatalf("imported %d", n)
	}
}

// Uploads through the API: checked by content and size, empty refused,
// someone else's sitting refused, the hash kept; late after the deadline.
func TestCertUploadAPI(t *testing.T) {
	e := newCertEnv(t, `{"max_upload_bytes":4096,"submission_working_days":2}`)
	alice, reg := e.registerPaidSeated(t)
	plan := reg.Components[1].Sittings[0].ID
	upload := func(hc *http.Client, body []byte) (int, []byte) {
		return call(t, e.examEnv, hc, "POST", fmt.Sprintf("/api/cert/sittings/%d/document?name=%s", plan, url.QueryEscape("改进方案.pdf")), body)
	}
	code, b := upload(alice, []byte("%PDF-1.7 too early"))
	expect(t, "before the theory exam", code, b, 409, "component_not_open")
	e.passTheory(alice, reg.Components[0].Sittings[0].AttemptID)
	reg = e.path(alice)[0]
	if reg.Components[0].State != certify.StatePassed || reg.Components[1].Sittings[0].Deadline == nil {
		t.Fatalf("after the theory exam: %+v", reg.Components)
	}
	for _, c := range []struct {
		what   string
		body   []byte
		status int
		code   string
	}{
		{"empty", nil, 400, "file_empty"},
		{"too large", append([]byte("%PDF-"), make([]byte, 5000)...), 413, "file_too_large"},
		{"an image named .pdf", []byte("\x89PNG\r\n\x1a\n0000"), 415, "file_type"},
		{"a zip that is not a Word document", []byte("PK\x03\x04...."), 415, "file_type"},
	} {
		code, b := upload(alice, c.body)
		expect(t, c.what, code, b, c.status, c.code)
	}
	code, b = upload(e.login(e.bob), []byte("%PDF-1.7 bob"))
	expect(t, "another candidate's sitting", code, b, 404, "not_found")
	// Ownership and size are judged before the body is read: a request
	// declaring 64 MiB is answered while its body is still to come.
	for _, c := range []struct {
		who    *http.Client
		status int
	}{{e.login(e.bob), 404}, {alice, 413}} {
		body, never := io.Pipe()
		req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/cert/sittings/%d/document?name=x.pdf", e.srv.URL, plan), body)
		req.ContentLength = 64 << 20
		req.Header.Set("X-CSRF-Token", csrf(t, c.who, e.srv.URL))
		got := make(chan int, 1)
		go func() {
			resp, err := c.who.Do(req)
			if err != nil {
				got <- 0
				return
			}
			resp.Body.Close()
			got <- resp.StatusCode
		}()
		select {
		case code := <-got:
			if code != c.status {
				t.Errorf("a 64 MiB upload: %d, want %d", code, c.status)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("a 64 MiB upload waited for its body (want %d at once)", c.status)
		}
		never.Close()
	}
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/api/cert/sittings/%d/document", e.srv.URL, plan), strings.NewReader("%PDF-1.7"))
	if resp, err := alice.Do(req); err != nil || resp.StatusCode != 403 {
		t.Fatalf("an upload without the CSRF header: %v %v", resp.StatusCode, err)
	}
	code, b = upload(alice, []byte("%PDF-1.7 the plan"))
	expect(t, "upload", code, b, 201, "")
	if got := decode[struct{ SHA256 string }](t, b).SHA256; len(got) != 64 {
		t.Fatalf("no hash: %s", b)
	}
	resp, err := alice.Get(fmt.Sprintf("%s/api/cert/sittings/%d/document", e.srv.URL, plan))
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("download: %v %v", resp.StatusCode, err)
	}
	if code, _ := call(t, e.examEnv, e.login(e.bob), "GET", fmt.Sprintf("/api/cert/sittings/%d/document", plan), nil); code != 404 {
		t.Fatalf("another candidate downloads the plan: %d", code)
	}
	if code, _ := call(t, e.examEnv, e.login(e.reviewers[0]), "GET", fmt.Sprintf("/api/cert/sittings/%d/document", plan), nil); code != 404 {
		t.Fatalf("a panel member off the panel downloads the plan: %d", code)
	}
	if code, _ := call(t, e.examEnv, e.login(e.reviewer), "GET", fmt.Sprintf("/api/cert/sittings/%d/document", plan), nil); code != 403 {
		t.Fatalf("a reviewer downloads the plan: %d", code)
	}
	e.clock.add(6 * 24 * 60 * 60 * 1e9) // six days on: past two working days
	code, b = upload(alice, []byte("%PDF-1.7 a late replacement"))
	expect(t, "late", code, b, 409, "rule_submission_deadline")
}

// The panel, the certificate and its public verification through the API.
func TestCertPanelAndVerificationAPI(t *testing.T) {
	e := newCertEnv(t, "{}")
	alice, reg := e.registerPaidSeated(t)
	e.passTheory(alice, reg.Components[0].Sittings[0].AttemptID)
	plan := reg.Components[1].Sittings[0].ID
	code, b := call(t, e.examEnv, alice, "POST", fmt.Sprintf("/api/cert/sittings/%d/document?name=plan.pdf", plan), []byte("%PDF-1.7 the plan"))
	expect(t, "upload", code, b, 201, "")

	admin := e.login(e.admin)
	ids := []int64{e.reviewers[0].id, e.reviewers[1].id, e.reviewers[2].id}
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/sittings/%d/panel", plan), map[string]any{"members": ids[:2]})
	expect(t, "a panel of two", code, b, 422, "rule_panel_size")
	code, b = call(t, e.examEnv, admin, "PUT", fmt.Sprintf("/api/admin/cert/reviewers/%d/affiliation", ids[2]), map[string]string{"organisation": "北京培训中心"})
	expect(t, "affiliation", code, b, 200, "")
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/sittings/%d/panel", plan), map[string]any{"members": ids})
	expect(t, "a member of the candidate's organisation", code, b, 409, "rule_conflict_of_interest")
	call(t, e.examEnv, admin, "PUT", fmt.Sprintf("/api/admin/cert/reviewers/%d/affiliation", ids[2]), map[string]string{"organisation": "上海评审中心"})
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/sittings/%d/panel", plan), map[string]any{"members": []int64{ids[0], ids[1], e.reviewer.id}})
	expect(t, "a reviewer on a panel", code, b, 400, "panel_member")
	code, b = call(t, e.examEnv, admin, "PUT", fmt.Sprintf("/api/admin/cert/reviewers/%d/affiliation", e.reviewer.id), map[string]string{"organisation": "x"})
	expect(t, "a reviewer's affiliation", code, b, 400, "panel_member")
	code, b = call(t, e.examEnv, admin, "POST", fmt.Sprintf("/api/admin/cert/sittings/%d/panel", plan), map[string]any{"members": ids})
	expect(t, "form the panel", code, b, 200, "")
	for who, want := range map[*http.Client]int{e.login(e.reviewers[0]): 200, e.login(e.panel): 404} {
		if code, _ := call(t, e.examEnv, who, "GET", fmt.Sprintf("/api/cert/sittings/%d/document", plan), nil); code != want {
			t.Fatalf("the plan for a panel member: %d, want %d", code, want)
		}
	}

	panel := []*http.Client{e.login(e.reviewers[0]), e.login(e.reviewers[1]), e.login(e.reviewers[2])}
	code, b = call(t, e.examEnv, panel[0], "POST", fmt.Sprintf("/api/panel/%d/score", plan), map[string]any{"score": 120, "comment": "x"})
	expect(t, "a score over 100", code, b, 400, "bad_score")
	for i, s := range []float64{88, 90, 83} {
		code, b = call(t, e.examEnv, panel[i], "POST", fmt.Sprintf("/api/panel/%d/score", plan), map[string]any{"score": s, "comment": fmt.Sprint("comment ", i)})
		expect(t, "score", code, b, 200, "")
		it := decode[certify.PanelItem](t, b)
		if i < 2 && (it.Scores != nil || strings.Contains(string(b), "comment 0") && i > 0) {
			t.Fatalf("member %d sees the others' scores before all scored: %s", i, b)
		}
		if i == 2 && (len(it.Scores) != 3 || *it.Score != 87 || !*it.Passed) {
			t.Fatalf("the panel's result: %s", b)
		}
	}
	reg = e.path(alice)[0]
	if reg.Status != certify.RegPassed || reg.Certificate == nil {
		t.Fatalf("no certificate: %+v", reg)
	}
	number := reg.Certificate.Number

	// A review rules her theory attempt invalid after the certificate was
	// issued: the certificate stays valid but needs the admin's attention.
	attention := func() []certify.Attention {
		code, b := call(t, e.examEnv, admin, "GET", "/api/admin/cert/attention", nil)
		expect(t, "attention", code, b, 200, "")
		return decode[struct{ Certificates []certify.Attention }](t, b).Certificates
	}
	if list := attention(); len(list) != 0 {
		t.Fatalf("attention before any ruling: %+v", list)
	}
	attempt := reg.Components[0].Sittings[0].AttemptID
	e.db.Create(&store.AttemptReview{AttemptID: attempt, Decision: "invalid", Reason: "a second person in view", DecidedBy: e.reviewer.id, DecidedAt: e.clock.now()})
	if list := attention(); len(list) != 1 || list[0].Number != number || list[0].AttemptID != attempt {
		t.Fatalf("attention after the ruling: %+v", list)
	}
	code, b = call(t, e.examEnv, alice, "GET", "/api/admin/cert/attention", nil)
	expect(t, "a candidate asks for attention", code, b, 403, "forbidden")
	if p := e.path(alice)[0]; p.Certificate.Status != certify.Valid || p.Status != certify.RegPassed {
		t.Fatalf("the certificate changed by itself: %+v", p)
	}

	// The printable page: its holder and admins only.
	for who, want := range map[*http.Client]int{alice: 200, admin: 200, e.login(e.bob): 404} {
		if code, _ := call(t, e.examEnv, who, "GET", "/cert/"+number, nil); code != want {
			t.Fatalf("certificate page: %d, want %d", code, want)
		}
	}
	_, page := call(t, e.examEnv, alice, "GET", "/cert/"+number, nil)
	if !strings.Contains(string(page), "王小明") || !strings.Contains(string(page), "data:image/png;base64,") || !strings.Contains(string(page), "/verify?code=") {
		t.Fatalf("certificate page lacks the holder or the QR code")
	}

	// Public verification, with no login.
	anon := &http.Client{}
	verify := func(q url.Values) (int, []byte) {
		return call(t, e.examEnv, anon, "GET", "/api/verify?"+q.Encode(), nil)
	}
	code, b = verify(url.Values{"number": {number}, "name": {"王小明"}})
	expect(t, "verify by name", code, b, 200, "")
	var got map[string]map[string]any
	json.Unmarshal(b, &got)
	keys := []string{}
	for k := range got["certificate"] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "issued_on,level_en,level_zh,name,number,programme_en,programme_zh,status" ||
		got["certificate"]["name"] != "王*明" || got["certificate"]["status"] != "valid" || strings.Contains(string(b), aliceID) {
		t.Fatalf("verification shows more or other than it should: %s", b)
	}
	code, b = verify(url.Values{"number": {number}, "id_number": {aliceID}})
	expect(t, "verify by ID number", code, b, 200, "")
	code, b = verify(url.Values{"number": {number}, "name": {"王大明"}})
	expect(t, "a wrong name", code, b, 404, "not_found")
	code, b = verify(url.Values{"number": {"KFZX2026ZZZZZZZZZZZZ"}, "name": {"王小明"}})
	expect(t, "an unknown number", code, b, 404, "not_found")
	code, b = call(t, e.examEnv, alice, "POST", "/api/admin/cert/certificates/revoke", map[string]string{"number": number, "reason": "x"})
	expect(t, "a candidate revokes", code, b, 403, "forbidden")
	code, b = call(t, e.examEnv, admin, "POST", "/api/admin/cert/certificates/revoke", map[string]string{"number": number, "reason": ""})
	expect(t, "revoke without a reason", code, b, 400, "reason_required")
	code, b = call(t, e.examEnv, admin, "POST", "/api/admin/cert/certificates/revoke", map[string]string{"number": number, "reason": "training record forged"})
	expect(t, "revoke", code, b, 200, "")
	code, b = verify(url.Values{"number": {number}, "name": {"王小明"}})
	if code != 200 || !strings.Contains(string(b), `"status":"revoked"`) {
		t.Fatalf("after revocation: %d %s", code, b)
	}
	if list := attention(); len(list) != 0 {
		t.Fatalf("a revoked certificate still needs attention: %+v", list)
	}
	var audits int64
	e.db.Model(&store.AuditEvent{}).Where("action = ? AND actor_id = ?", "certificate_revoked", e.admin.id).Count(&audits)
	if audits != 1 {
		t.Fatal("revocation not audited")
	}
	// Rate limit: 30 checks per address in 10 minutes (6 made above).
	limited := false
	for range 30 {
		code, b = verify(url.Values{"number": {number}, "name": {"王小明"}})
		if code == 429 {
			limited = errCode(b) == "too_many_attempts"
			break
		}
	}
	if !limited {
		t.Fatal("verification is not rate-limited")
	}
	if resp, err := anon.Get(e.srv.URL + "/verify"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the public verification page needs no login: %v", err)
	}
}
