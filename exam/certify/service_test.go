package certify_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/accounts"
	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// fixture is a programme with the three default levels, a theory exam and
// a session per level, an admin and reviewers, on a fresh database.
type fixture struct {
	t         *testing.T
	ctx       context.Context
	db        *store.DB
	svc       *certify.Service
	clock     *clock
	levels    map[string]int64
	sessions  map[string]int64
	admin     int64
	reviewers []int64
	n         int
}

func newFixture(t *testing.T, db *store.DB, rules string) *fixture {
	f := &fixture{t: t, ctx: context.Background(), db: db, levels: map[string]int64{}, sessions: map[string]int64{},
		clock: &clock{t: time.Date(2026, 9, 24, 2, 0, 0, 0, time.UTC)}} // Thursday 10:00 in China
	f.svc = certify.New(certify.Config{DB: db, DataDir: t.TempDir(), Now: f.clock.now,
		NewCandidate: func(ctx context.Context, tx *gorm.DB, name string) (certify.Login, error) {
			f.n++
			u := &store.User{Role: store.RoleCandidate, Username: fmt.Sprintf("9%09d", f.n), PasswordHash: "x", DisplayName: name}
			err := tx.Create(u).Error
			return certify.Login{UserID: u.ID, Username: u.Username, Password: "pw"}, err
		}})
	p := &store.Programme{Code: "KFZX", NameZh: "客服联络咨询师", NameEn: "Customer Contact Consultant", Rules: rules}
	f.must(db.Create(p).Error)
	for i := range 4 {
		f.must(db.Create(&store.Question{ProgrammeID: p.ID, Kind: "single", Stem: fmt.Sprint("题", i), Options: `["甲","乙"]`, Answer: "[0]", Tags: "[]", Difficulty: 1}).Error)
	}
	for _, l := range exam.DefaultLevels {
		comps, _ := json.Marshal(l.Components)
		lv := &store.Level{ProgrammeID: p.ID, Code: l.Code, Rank: l.Rank, NameZh: l.NameZh, NameEn: l.NameEn, TrainingHours: l.TrainingHours, FeeCents: l.FeeCents, Components: string(comps)}
		f.must(db.Create(lv).Error)
		f.levels[l.Code] = lv.ID
		ex := &store.Exam{ProgrammeID: p.ID, LevelID: &lv.ID, Code: "T-" + l.Code, Kind: "formal", TitleZh: "理论", TitleEn: "Theory", DurationMinutes: 120, PassMark: 80,
			Blueprint: `{"sections":[{"title_zh":"单选","title_en":"Single","kind":"single","count":2,"points":50}]}`}
		f.must(db.Create(ex).Error)
		now := f.clock.now()
		s := &store.ExamSession{ExamID: ex.ID, Code: "S-" + l.Code, Title: "理论考试 " + l.Code, StartsAt: now, AdmissionEndsAt: now.Add(2 * time.Hour), EndsAt: now.Add(4 * time.Hour), AdmissionMode: "open"}
		f.must(db.Create(s).Error)
		f.sessions[l.Code] = s.ID
	}
	f.admin = f.user(store.RoleAdmin, "admin")
	for i := range 5 {
		f.reviewers = append(f.reviewers, f.user(store.RolePanel, fmt.Sprint("panel", i)))
	}
	return f
}

func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) user(role store.Role, name string) int64 {
	u := &store.User{Role: role, Username: name, PasswordHash: "x", DisplayName: name}
	f.must(f.db.Create(u).Error)
	return u.ID
}

func id(first17 string) string { return first17 + string(certify.IDCheckChar(first17)) }

var ids = []string{id("11010519900101123"), id("44030519851212456"), id("31010119951010789"), id("51010119880808321")}

func applicant(n int, org string) certify.Applicant {
	return certify.Applicant{Name: "王小明", IDNumber: ids[n], Education: "bachelor", TrainingHours: 120, Organisation: org}
}

// register registers a new candidate for level with its fee paid.
func (f *fixture) register(levelCode string, n int, org string) *store.Registration {
	f.t.Helper()
	cand := f.user(store.RoleCandidate, fmt.Sprintf("cand%d-%s-%d", n, levelCode, time.Now().UnixNano()))
	reg, err := f.svc.Register(f.ctx, cand, cand, f.levels[levelCode], applicant(n, org))
	f.must(err)
	var fee store.Fee
	f.must(f.db.Where("registration_id = ? AND item = ?", reg.ID, certify.ItemRegistration).Take(&fee).Error)
	f.must(f.svc.MarkPaid(f.ctx, f.admin, fee.ID, "", "RCPT-1"))
	return reg
}

func (f *fixture) sitting(regID int64, component string, n int) *store.Sitting {
	var st store.Sitting
	f.must(f.db.Where("registration_id = ? AND component = ? AND n = ?", regID, component, n).Take(&st).Error)
	return &st
}

// sitTheory seats the theory sitting and ends its attempt with a score, as
// the exam engine would.
func (f *fixture) sitTheory(reg *store.Registration, level string, n int, score float64) int64 {
	f.t.Helper()
	if _, err := f.svc.Seat(f.ctx, f.admin, reg.ID, f.sessions[level]); err != nil && n == 1 {
		f.t.Fatal(err)
	}
	st := f.sitting(reg.ID, "theory", n)
	var a store.Attempt
	f.must(f.db.Where("seat_id = ?", *st.SeatID).Take(&a).Error)
	f.must(f.db.Model(&a).Updates(map[string]any{"status": exam.StatusSubmitted, "score": score, "passed": score >= 80, "ended_at": f.clock.now()}).Error)
	_, err := f.svc.Settle(f.ctx, reg.ID)
	f.must(err)
	return a.ID
}

func isErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) || (want == nil) != (err == nil) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

func docx() []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, _ := zw.Create("word/document.xml")
	w.Write([]byte("<w:document/>"))
	zw.Close()
	return b.Bytes()
}

func (f *fixture) audits(action string) int {
	var n int64
	f.db.Model(&store.AuditEvent{}).Where("action = ?", action).Count(&n)
	return int(n)
}

// The whole intermediate path: registration, fee, seat, theory, plan,
// panel, certificate, verification, revocation.
func TestIntermediatePath(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, "{}")
		cand := f.user(store.RoleCandidate, "2026000001")
		_, err := f.svc.Register(f.ctx, cand, cand, f.levels["intermediate"], certify.Applicant{Name: "王小明", IDNumber: ids[0], Education: "bachelor", TrainingHours: 71})
		isErr(t, "71 hours for intermediate", err, certify.ErrTrainingHours)
		bad := applicant(0, "北京培训中心")
		bad.Email = "wang at example"
		_, err = f.svc.Register(f.ctx, cand, cand, f.levels["intermediate"], bad)
		isErr(t, "an address that is not one", err, accounts.ErrBadContact)
		withMail := applicant(0, "北京培训中心")
		withMail.Email = "wang@example.test"
		reg, err := f.svc.Register(f.ctx, cand, cand, f.levels["intermediate"], withMail)
		f.must(err)
		_, err = f.svc.Register(f.ctx, cand, cand, f.levels["intermediate"], applicant(0, "北京培训中心"))
		isErr(t, "registering twice", err, certify.ErrRegistered)
		for _, r := range f.reviewers {
			f.must(accounts.SetContact(f.ctx, db, f.admin, r, fmt.Sprintf("reviewer%d@example.test", r), ""))
		}

		_, err = f.svc.Seat(f.ctx, f.admin, reg.ID, f.sessions["intermediate"])
		isErr(t, "seat before paying", err, certify.ErrNotPaid)
		path, err := f.svc.Path(f.ctx, cand)
		f.must(err)
		if len(path) != 1 || path[0].OwedCents != 1200_00 || len(path[0].Components) != 2 {
			t.Fatalf("path before paying: %+v", path)
		}
		fee := path[0].Fees[0].ID
		isErr(t, "payment without a receipt", f.svc.MarkPaid(f.ctx, f.admin, fee, "", " "), certify.ErrReceipt)
		f.must(f.svc.MarkPaid(f.ctx, f.admin, fee, "", "RCPT-2026-0001"))
		isErr(t, "paying twice", f.svc.MarkPaid(f.ctx, f.admin, fee, "", "RCPT-2026-0002"), certify.ErrAlreadyPaid)
		_, err = f.svc.Seat(f.ctx, f.admin, reg.ID, f.sessions["junior"])
		isErr(t, "seat in another level's session", err, certify.ErrNoSession)

		plan := f.sitting(reg.ID, "practical", 1)
		_, err = f.svc.Submit(f.ctx, cand, plan.ID, "plan.pdf", []byte("%PDF-1.7 plan"))
		isErr(t, "plan before the theory exam", err, certify.ErrNotOpen)

		f.sitTheory(reg, "intermediate", 1, 90)
		_, err = f.svc.Submit(f.ctx, f.user(store.RoleCandidate, "other"), plan.ID, "plan.pdf", []byte("%PDF-1.7 plan"))
		isErr(t, "another candidate's sitting", err, store.ErrNotFound)
		_, err = f.svc.Submit(f.ctx, cand, plan.ID, "plan.pdf", []byte("GIF89a"))
		isErr(t, "not a document", err, certify.ErrFileType)
		st, err := f.svc.Submit(f.ctx, cand, plan.ID, "计划.docx", docx())
		f.must(err)
		if st.FileType != certify.DOCX || len(st.FileSHA256) != 64 || st.FileName != "计划.docx" {
			t.Fatalf("stored submission: %+v", st)
		}

		r := f.reviewers
		isErr(t, "panel of two", f.svc.FormPanel(f.ctx, f.admin, plan.ID, r[:2]), certify.ErrPanelSize)
		isErr(t, "panel of four", f.svc.FormPanel(f.ctx, f.admin, plan.ID, r[:4]), certify.ErrPanelOdd)
		isErr(t, "a candidate on a panel", f.svc.FormPanel(f.ctx, f.admin, plan.ID, []int64{r[0], r[1], cand}), certify.ErrPanelMember)
		f.must(f.svc.SetAffiliation(f.ctx, f.admin, r[3], "北京培训中心"))
		isErr(t, "member of the candidate's organisation", f.svc.FormPanel(f.ctx, f.admin, plan.ID, []int64{r[0], r[1], r[3]}), certify.ErrConflict)
		f.must(f.svc.FormPanel(f.ctx, f.admin, plan.ID, []int64{r[0], r[1], r[4]}))
		isErr(t, "declaring without a reason", f.svc.DeclareConflict(f.ctx, r[4], plan.ID, ""), certify.ErrReason)
		f.must(f.svc.DeclareConflict(f.ctx, r[4], plan.ID, "former colleague"))
		isErr(t, "a member who declared a conflict", f.svc.FormPanel(f.ctx, f.admin, plan.ID, []int64{r[0], r[1], r[4]}), certify.ErrConflict)
		f.must(f.svc.FormPanel(f.ctx, f.admin, plan.ID, []int64{r[0], r[1], r[2]}))

		isErr(t, "a reviewer off the panel scores", f.svc.Score(f.ctx, r[3], plan.ID, 90, "ok"), certify.ErrNotOnPanel)
		isErr(t, "score above 100", f.svc.Score(f.ctx, r[0], plan.ID, 101, "ok"), certify.ErrScore)
		f.must(f.svc.Score(f.ctx, r[0], plan.ID, 70, "thin"))
		f.must(f.svc.Score(f.ctx, r[0], plan.ID, 85, "complete after all")) // a change, audited
		f.must(f.svc.Score(f.ctx, r[1], plan.ID, 90, "feasible"))
		it, err := f.svc.PanelItem(f.ctx, r[1], plan.ID)
		f.must(err)
		if it.Scores != nil || it.AllScored || it.Mine == nil || *it.Mine.Score != 90 {
			t.Fatalf("a member sees others' scores before all scored: %+v", it)
		}
		_, err = f.svc.PanelItem(f.ctx, r[3], plan.ID)
		isErr(t, "a non-member reads the panel", err, certify.ErrNotOnPanel)
		f.must(f.svc.Score(f.ctx, r[2], plan.ID, 80, "good"))
		it, _ = f.svc.PanelItem(f.ctx, r[1], plan.ID)
		if !it.AllScored || len(it.Scores) != 3 || *it.Score != 85 || !*it.Passed {
			t.Fatalf("after all scored: %+v", it)
		}
		isErr(t, "a change after the result", f.svc.Score(f.ctx, r[2], plan.ID, 10, "x"), certify.ErrNotOpen)
		if f.audits("panel_scored") != 3 || f.audits("panel_score_changed") != 1 || f.audits("component_scored") != 1 {
			t.Fatalf("scores not audited: %d %d", f.audits("panel_scored"), f.audits("panel_score_changed"))
		}

		path, err = f.svc.Path(f.ctx, cand)
		f.must(err)
		c := path[0].Certificate
		if path[0].Status != certify.RegPassed || c == nil || c.Status != certify.Valid || len(c.Number) != 4+4+12 {
			t.Fatalf("certificate: %+v %+v", path[0], c)
		}
		for _, v := range []struct {
			what, number, name, idn, code string
			want                          error
		}{
			{"by name", c.Number, "王小明", "", "", nil},
			{"by ID number", c.Number, "", ids[0], "", nil},
			{"by code", c.Number, "", "", c.Code, nil},
			{"wrong name", c.Number, "王小", "", "", store.ErrNotFound},
			{"nothing but the number", c.Number, "", "", "", store.ErrNotFound},
			{"unknown number", "KFZX2026AAAAAAAAAAAA", "王小明", "", "", store.ErrNotFound},
		} {
			got, err := f.svc.Verify(f.ctx, v.number, v.name, v.idn, v.code)
			isErr(t, v.what, err, v.want)
			if err == nil && (got.Name != "王*明" || got.Status != certify.Valid || got.LevelZh != "中级") {
				t.Fatalf("%s: %+v", v.what, got)
			}
		}
		// Each step told the candidate, in its transaction; each panel
		// formed told its members.
		var kinds []string
		db.Model(&store.OutboxMessage{}).Where("user_id = ?", cand).Order("id").Pluck("kind", &kinds)
		if want := "[registration_received fee_confirmed seat_assigned result_published result_published certificate_issued]"; fmt.Sprint(kinds) != want {
			t.Fatalf("the candidate's messages %v, want %s", kinds, want)
		}
		var panel int64
		db.Model(&store.OutboxMessage{}).Where("kind = 'panel_assigned'").Count(&panel)
		if panel != 6 {
			t.Fatalf("%d panel messages for two panels of three", panel)
		}
		isErr(t, "revoking without a reason", f.svc.Revoke(f.ctx, f.admin, c.Number, ""), certify.ErrReason)
		f.must(f.svc.Revoke(f.ctx, f.admin, c.Number, "forged training record"))
		isErr(t, "revoking twice", f.svc.Revoke(f.ctx, f.admin, c.Number, "again"), certify.ErrRevoked)
		got, err := f.svc.Verify(f.ctx, c.Number, "王小明", "", "")
		f.must(err)
		if got.Status != certify.Revoked || f.audits("certificate_revoked") != 1 {
			t.Fatalf("after revocation: %+v", got)
		}
		_, err = f.svc.Register(f.ctx, cand, cand, f.levels["intermediate"], applicant(0, ""))
		isErr(t, "registering again after passing", err, certify.ErrRegistered)
	})
}

// A failed theory exam: one retake at 200 CNY, placed into the next
// session; failing it closes the registration and the candidate registers
// again.
func TestRetakeAndRegisterAgain(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, "{}")
		reg := f.register("junior", 1, "")
		f.must(accounts.SetContact(f.ctx, db, f.admin, reg.CandidateID, "", "+8613800138000"))
		_, err := f.svc.RequestRetake(f.ctx, f.admin, reg.ID, "theory", 0)
		isErr(t, "retake before failing", err, certify.ErrRetakeNotNeeded)
		f.sitTheory(reg, "junior", 1, 60)
		f.svc.Path(f.ctx, reg.CandidateID) // settles again: the offer is made once
		var offers []store.OutboxMessage
		db.Where("user_id = ? AND kind = 'retake_offered'", reg.CandidateID).Find(&offers)
		if len(offers) != 1 || offers[0].Channel != store.ChannelSMS || !strings.Contains(offers[0].Data, `"left":"1"`) {
			t.Fatalf("retake offers %+v", offers)
		}
		_, err = f.svc.RequestRetake(f.ctx, reg.CandidateID, reg.ID, "theory", reg.CandidateID+1000)
		isErr(t, "another candidate's retake", err, store.ErrNotFound)
		st, err := f.svc.RequestRetake(f.ctx, reg.CandidateID, reg.ID, "theory", reg.CandidateID)
		f.must(err)
		path, _ := f.svc.Path(f.ctx, reg.CandidateID)
		if path[0].OwedCents != 200_00 || path[0].Components[0].RetakesLeft != 0 || st.N != 2 {
			t.Fatalf("retake fee and count: %+v", path[0])
		}
		_, err = f.svc.Seat(f.ctx, f.admin, reg.ID, f.sessions["junior"])
		isErr(t, "retake seat before paying", err, certify.ErrNotPaid)
		q, _ := f.svc.RetakeQueue(f.ctx)
		if q[0].Waiting != 0 {
			t.Fatalf("an unpaid retake is waiting: %+v", q)
		}
		f.must(f.svc.MarkPaid(f.ctx, f.admin, *st.FeeID, "", "RCPT-R"))
		q, _ = f.svc.RetakeQueue(f.ctx)
		if q[0].Waiting != 1 || q[0].Dedicated {
			t.Fatalf("queue: %+v", q)
		}
		_, _, err = f.svc.PlaceRetakes(f.ctx, f.admin, f.levels["junior"], true, exam.SessionSpec{})
		isErr(t, "a dedicated session for one", err, certify.ErrNotOpen)
		// The candidate already sat the only session: a new one is scheduled.
		var ex store.Exam
		f.must(f.db.Where("code = ?", "T-junior").Take(&ex).Error)
		now := f.clock.now()
		next, err := exam.New(exam.Config{DB: f.db}).CreateSession(f.ctx, exam.SessionSpec{ExamID: ex.ID, Code: "S2", Title: "下一场", StartsAt: now.Add(24 * time.Hour),
			AdmissionEndsAt: now.Add(25 * time.Hour), EndsAt: now.Add(27 * time.Hour), AdmissionMode: "open"}, f.admin)
		f.must(err)
		sid, n, err := f.svc.PlaceRetakes(f.ctx, f.admin, f.levels["junior"], false, exam.SessionSpec{})
		f.must(err)
		if sid != next || n != 1 {
			t.Fatalf("placed %d into %d, want 1 into the next session %d", n, sid, next)
		}
		f.sessions["junior"] = next
		f.sitTheory(reg, "junior", 2, 70)
		path, _ = f.svc.Path(f.ctx, reg.CandidateID)
		if !path[0].RegisterAgain || path[0].Status != certify.RegClosed || path[0].Components[0].State != certify.StateExhausted {
			t.Fatalf("after a failed retake: %+v", path[0])
		}
		_, err = f.svc.RequestRetake(f.ctx, reg.CandidateID, reg.ID, "theory", reg.CandidateID)
		isErr(t, "a second retake", err, certify.ErrNoRetake)
		again, err := f.svc.Register(f.ctx, reg.CandidateID, reg.CandidateID, f.levels["junior"], applicant(1, ""))
		f.must(err)
		if again.ID == reg.ID {
			t.Fatal("no new registration")
		}
	})
}

// More than the threshold waiting: a dedicated retake session is offered
// and seats them all.
func TestDedicatedRetakeSession(t *testing.T) {
	f := newFixture(t, storetest.NewDB(t, "sqlite"), `{"dedicated_retake_threshold":2}`)
	for i := range 3 {
		reg := f.register("junior", i, "")
		f.sitTheory(reg, "junior", 1, 50)
		st, err := f.svc.RequestRetake(f.ctx, f.admin, reg.ID, "theory", 0)
		f.must(err)
		f.must(f.svc.MarkPaid(f.ctx, f.admin, *st.FeeID, "", fmt.Sprint("R", i)))
	}
	q, _ := f.svc.RetakeQueue(f.ctx)
	if q[0].Waiting != 3 || !q[0].Dedicated || q[0].Threshold != 2 {
		t.Fatalf("queue: %+v", q)
	}
	now := f.clock.now()
	sid, n, err := f.svc.PlaceRetakes(f.ctx, f.admin, f.levels["junior"], true, exam.SessionSpec{Code: "RETAKE-1", Title: "补考专场",
		StartsAt: now.Add(48 * time.Hour), AdmissionEndsAt: now.Add(49 * time.Hour), EndsAt: now.Add(51 * time.Hour)})
	f.must(err)
	var seats int64
	f.db.Model(&store.Seat{}).Where("session_id = ?", sid).Count(&seats)
	if n != 3 || seats != 3 {
		t.Fatalf("dedicated session %d has %d seats, placed %d", sid, seats, n)
	}
}

// An attempt ruled invalid by review fails the theory component even after
// it first counted as passed.
func TestInvalidAttemptFails(t *testing.T) {
	f := newFixture(t, storetest.NewDB(t, "sqlite"), "{}")
	reg := f.register("intermediate", 0, "")
	attempt := f.sitTheory(reg, "intermediate", 1, 95)
	if st := f.sitting(reg.ID, "theory", 1); st.Passed == nil || !*st.Passed {
		t.Fatalf("theory not passed: %+v", st)
	}
	f.must(f.db.Create(&store.AttemptReview{AttemptID: attempt, Decision: "invalid", Reason: "phone in view", DecidedBy: f.reviewers[0], DecidedAt: f.clock.now()}).Error)
	path, err := f.svc.Path(f.ctx, reg.CandidateID)
	f.must(err)
	if th := path[0].Components[0]; th.State != certify.StateRetake || *th.Sittings[0].Passed {
		t.Fatalf("an invalid attempt still passes: %+v", th)
	}
}

// Submissions: by content, size, emptiness and the working-day deadline
// with the holiday calendar.
func TestSubmissionRules(t *testing.T) {
	// The theory exam is on Thursday 2026-09-24; 3 working days, Friday
	// 2026-09-25 is a holiday: the deadline is the end of Wednesday 09-30.
	f := newFixture(t, storetest.NewDB(t, "sqlite"), `{"submission_working_days":3,"holidays":["2026-09-25"],"max_upload_bytes":2000}`)
	reg := f.register("intermediate", 0, "")
	f.sitTheory(reg, "intermediate", 1, 88)
	plan := f.sitting(reg.ID, "practical", 1)
	for _, c := range []struct {
		what string
		body []byte
		want error
	}{
		{"empty", nil, certify.ErrEmptyFile},
		{"too large", append([]byte("%PDF-"), make([]byte, 2000)...), certify.ErrFileTooLarge},
		{"an image named plan.pdf", []byte("\x89PNG\r\n\x1a\n"), certify.ErrFileType},
		{"a zip that is not a Word document", []byte("PK\x03\x04garbage"), certify.ErrFileType},
	} {
		_, err := f.svc.Submit(f.ctx, reg.CandidateID, plan.ID, "plan.pdf", c.body)
		isErr(t, c.what, err, c.want)
	}
	if st := f.sitting(reg.ID, "practical", 1); st.SubmittedAt != nil {
		t.Fatal("a refused upload changed the sitting")
	}
	f.clock.set(time.Date(2026, 9, 30, 15, 59, 0, 0, time.UTC)) // 23:59 Wednesday in China
	_, err := f.svc.Submit(f.ctx, reg.CandidateID, plan.ID, "plan.pdf", []byte("%PDF-1.4 on time"))
	f.must(err)
	f.clock.set(time.Date(2026, 9, 30, 16, 0, 0, 0, time.UTC)) // midnight
	_, err = f.svc.Submit(f.ctx, reg.CandidateID, plan.ID, "plan.pdf", []byte("%PDF-1.4 late"))
	isErr(t, "after the deadline", err, certify.ErrLate)
}

// A cohort import is all or none and names each broken rule by line.
func TestImport(t *testing.T) {
	f := newFixture(t, storetest.NewDB(t, "sqlite"), "{}")
	rows := []certify.Row{
		{"junior", applicant(0, "甲培训学校")},
		{"senior", certify.Applicant{Name: "李四", IDNumber: ids[1], Education: "bachelor", TrainingHours: 100, Organisation: "甲培训学校"}},
		{"junior", certify.Applicant{Name: "赵五", IDNumber: "110105194912310021", Education: "bachelor", TrainingHours: 100}},
		{"expert", applicant(2, "")},
	}
	_, err := f.svc.Import(f.ctx, f.admin, 1, rows)
	var ie *certify.ImportError
	if !errors.As(err, &ie) || len(ie.Lines) != 3 || ie.Lines[0].Code != "rule_training_hours" || ie.Lines[1].Code != "id_number" || ie.Lines[2].Line != 5 {
		t.Fatalf("import errors: %v %+v", err, ie)
	}
	var n int64
	f.db.Model(&store.Registration{}).Count(&n)
	if n != 0 {
		t.Fatal("a refused import registered someone")
	}
	out, err := f.svc.Import(f.ctx, f.admin, 1, rows[:1])
	f.must(err)
	if len(out) != 1 || out[0].Username == "" {
		t.Fatalf("imported: %+v", out)
	}
}

// The senior path: application materials, a scheduled defence, a panel
// of five scoring by the median.
func TestSeniorReviewWithDefence(t *testing.T) {
	f := newFixture(t, storetest.NewDB(t, "sqlite"), `{"score_method":"median"}`)
	reg := f.register("senior", 0, "")
	f.sitTheory(reg, "senior", 1, 85)
	review := f.sitting(reg.ID, "review", 1)
	if _, err := f.svc.Submit(f.ctx, reg.CandidateID, review.ID, "申报材料.pdf", []byte("%PDF-1.5 materials")); err != nil {
		t.Fatal(err)
	}
	theory := f.sitting(reg.ID, "theory", 1)
	isErr(t, "a defence for the theory exam", f.svc.ScheduleDefence(f.ctx, f.admin, theory.ID, f.clock.now()), certify.ErrNotOpen)
	at := f.clock.now().Add(72 * time.Hour)
	f.must(f.svc.ScheduleDefence(f.ctx, f.admin, review.ID, at))
	f.must(f.svc.FormPanel(f.ctx, f.admin, review.ID, f.reviewers))
	for i, s := range []float64{95, 60, 82, 81, 40} {
		f.must(f.svc.Score(f.ctx, f.reviewers[i], review.ID, s, "答辩表现"))
	}
	path, err := f.svc.Path(f.ctx, reg.CandidateID)
	f.must(err)
	rv := path[0].Components[1]
	if rv.Component != "review" || *rv.Sittings[0].Score != 81 || !*rv.Sittings[0].Passed || !rv.Sittings[0].DefenceAt.Equal(at) || path[0].Certificate == nil {
		t.Fatalf("senior path (median 81 passes; the mean, 71.6, would not): %+v", path[0])
	}
}

// Three members scoring at the same moment: the last score decides the
// component exactly once, on both databases.
func TestConcurrentScoresDecideOnce(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, "{}")
		reg := f.register("intermediate", 0, "")
		f.sitTheory(reg, "intermediate", 1, 90)
		plan := f.sitting(reg.ID, "practical", 1)
		_, err := f.svc.Submit(f.ctx, reg.CandidateID, plan.ID, "p.pdf", []byte("%PDF-1.7"))
		f.must(err)
		f.must(f.svc.FormPanel(f.ctx, f.admin, plan.ID, f.reviewers[:3]))
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for i := range 3 {
			wg.Go(func() { errs <- f.svc.Score(f.ctx, f.reviewers[i], plan.ID, 90, "ok") })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			f.must(err)
		}
		if st := f.sitting(reg.ID, "practical", 1); st.Passed == nil || !*st.Passed || f.audits("component_scored") != 1 || f.audits("certificate_issued") != 1 {
			t.Fatalf("after concurrent scores: %+v, %d decisions, %d certificates", st, f.audits("component_scored"), f.audits("certificate_issued"))
		}
	})
}

// A review that rules the passing theory attempt invalid after the
// certificate was issued does not revoke it: the certificate needs the
// admin's attention until revoked. An invalid attempt of an earlier,
// failed sitting does not count.
func TestInvalidAfterCertificateNeedsAttention(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) { invalidAfterCertificate(t, newFixture(t, db, "{}")) })
}

func invalidAfterCertificate(t *testing.T, f *fixture) {
	reg := f.register("junior", 0, "")
	attempt := f.sitTheory(reg, "junior", 1, 95)
	other := f.register("junior", 1, "")
	first := f.sitTheory(other, "junior", 1, 50)
	f.must(f.db.Create(&store.AttemptReview{AttemptID: first, Decision: "invalid", Reason: "notes on the desk", DecidedBy: f.reviewers[0], DecidedAt: f.clock.now()}).Error)
	_, err := f.svc.RequestRetake(f.ctx, other.CandidateID, other.ID, "theory", other.CandidateID)
	f.must(err)
	var fee store.Fee
	f.must(f.db.Where("registration_id = ? AND item = ?", other.ID, certify.ItemRetake).Take(&fee).Error)
	f.must(f.svc.MarkPaid(f.ctx, f.admin, fee.ID, "", "RCPT-2"))
	var ex store.Exam
	f.must(f.db.Where("code = ?", "T-junior").Take(&ex).Error)
	now := f.clock.now()
	next, err := exam.New(exam.Config{DB: f.db}).CreateSession(f.ctx, exam.SessionSpec{ExamID: ex.ID, Code: "S2", Title: "下一场", StartsAt: now,
		AdmissionEndsAt: now.Add(time.Hour), EndsAt: now.Add(3 * time.Hour), AdmissionMode: "open"}, f.admin)
	f.must(err)
	f.sessions["junior"] = next
	if _, err := f.svc.Seat(f.ctx, f.admin, other.ID, next); err != nil {
		t.Fatal(err)
	}
	f.sitTheory(other, "junior", 2, 90)

	path, err := f.svc.Path(f.ctx, reg.CandidateID)
	f.must(err)
	if path[0].Certificate == nil || path[0].Status != certify.RegPassed {
		t.Fatalf("no certificate: %+v", path[0])
	}
	if p, _ := f.svc.Path(f.ctx, other.CandidateID); p[0].Certificate == nil {
		t.Fatalf("no certificate after the retake: %+v", p[0])
	}
	list, err := f.svc.NeedsAttention(f.ctx)
	f.must(err)
	if len(list) != 0 {
		t.Fatalf("before any ruling on a passing attempt: %+v", list)
	}
	f.clock.add(24 * time.Hour)
	f.must(f.db.Create(&store.AttemptReview{AttemptID: attempt, Decision: "invalid", Reason: "phone in view", DecidedBy: f.reviewers[0], DecidedAt: f.clock.now()}).Error)
	list, err = f.svc.NeedsAttention(f.ctx)
	f.must(err)
	number := path[0].Certificate.Number
	if len(list) != 1 || list[0].Number != number || list[0].AttemptID != attempt || list[0].Reason != "phone in view" || list[0].RegistrationID != reg.ID {
		t.Fatalf("needs attention: %+v", list)
	}
	// Not revoked by itself: still valid on the path and to the public.
	path, err = f.svc.Path(f.ctx, reg.CandidateID)
	f.must(err)
	v, err := f.svc.Verify(f.ctx, number, "王小明", "", "")
	f.must(err)
	if path[0].Certificate.Status != certify.Valid || path[0].Status != certify.RegPassed || v.Status != certify.Valid {
		t.Fatalf("the certificate changed by itself: %+v %+v", path[0], v)
	}
	f.must(f.svc.Revoke(f.ctx, f.admin, number, "theory attempt ruled invalid"))
	if list, _ = f.svc.NeedsAttention(f.ctx); len(list) != 0 {
		t.Fatalf("a revoked certificate still needs attention: %+v", list)
	}
}

// Setting rules on both databases: a refusal changes nothing, a change is
// audited with old and new values, keys the programme does not know are
// kept, and a level's change applies to new registrations.
func TestSetRules(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, `{"pass_mark":80,"console_grid":"4x4"}`)
		var prog store.Programme
		f.must(f.db.Take(&prog, "code = ?", "KFZX").Error)
		_, err := f.svc.SetRules(f.ctx, f.admin, prog.ID, []byte(`{"pass_mark":70,"min_panel_size":2}`))
		var re *certify.RulesError
		if !errors.As(err, &re) || len(re.Problems) != 1 || re.Problems[0].Rule != "min_panel_size" {
			t.Fatalf("an even panel: %v", err)
		}
		var after store.Programme
		f.must(f.db.Take(&after, prog.ID).Error)
		if after.Rules != prog.Rules || f.audits("programme_rules_changed") != 0 {
			t.Fatalf("a refusal changed the rules: %s", after.Rules)
		}
		got, err := f.svc.SetRules(f.ctx, f.admin, prog.ID, []byte(`{"pass_mark":70,"holidays":["2026-10-02","2026-10-01"]}`))
		f.must(err)
		if got.Rules.PassMark != 70 || strings.Join(got.Rules.Holidays, ",") != "2026-10-01,2026-10-02" || got.Rules.MinPanelSize != 3 {
			t.Fatalf("rules: %+v", got.Rules)
		}
		f.must(f.db.Take(&after, prog.ID).Error)
		if !strings.Contains(after.Rules, `"console_grid":"4x4"`) || f.audits("programme_rules_changed") != 1 {
			t.Fatalf("stored: %s, %d audits", after.Rules, f.audits("programme_rules_changed"))
		}
		if _, err := f.svc.SetRules(f.ctx, f.admin, prog.ID, []byte(`{"pass_mark":70}`)); err != nil || f.audits("programme_rules_changed") != 1 {
			t.Fatalf("an unchanged rule is audited: %v", err)
		}
		// A pass mark of 70 passes a panel score of 75 from now on.
		if !certify.Passes(got.Rules, 75) {
			t.Fatal("pass mark not applied")
		}

		reg := f.register("junior", 0, "")
		l, err := f.svc.SetLevel(f.ctx, f.admin, f.levels["junior"], []byte(`{"fee_cents":90000,"components":["theory","practical"]}`))
		f.must(err)
		if l.FeeCents != 900_00 || l.TrainingHours != 48 || f.audits("level_rules_changed") != 1 {
			t.Fatalf("level: %+v", l)
		}
		_, err = f.svc.SetLevel(f.ctx, f.admin, f.levels["junior"], []byte(`{"components":[]}`))
		if !errors.As(err, &re) || re.Problems[0].Rule != "components" {
			t.Fatalf("a level without components: %v", err)
		}
		_, err = f.svc.SetLevel(f.ctx, f.admin, 99999, []byte(`{"fee_cents":1}`))
		isErr(t, "an unknown level", err, certify.ErrUnknownLevel)
		old, err := f.svc.Path(f.ctx, reg.CandidateID)
		f.must(err)
		fresh := f.register("junior", 1, "")
		now, err := f.svc.Path(f.ctx, fresh.CandidateID)
		f.must(err)
		if len(old[0].Components) != 1 || old[0].Fees[0].AmountCents != 800_00 || len(now[0].Components) != 2 || now[0].Fees[0].AmountCents != 900_00 {
			t.Fatalf("before the change: %+v; after: %+v", old[0], now[0])
		}
	})
}

// Sign-up on both databases: the ID number is checked and unique across
// accounts and registrations, and no password is hashed for a refusal.
func TestSignUpAccount(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, "{}")
		hashed := 0
		hash := func() (string, error) { hashed++; return "hash", nil }
		_, err := f.svc.SignUpAccount(f.ctx, certify.SignUp{Name: "陈一", IDNumber: ids[0][:17] + "0"}, hash)
		isErr(t, "a wrong check digit", err, certify.ErrIDNumber)
		_, err = f.svc.SignUpAccount(f.ctx, certify.SignUp{Name: "  ", IDNumber: ids[0]}, hash)
		isErr(t, "no name", err, certify.ErrMissingField)
		u, err := f.svc.SignUpAccount(f.ctx, certify.SignUp{Name: " 陈一 ", IDNumber: strings.ToLower(ids[0]), IP: "192.0.2.1"}, hash)
		f.must(err)
		if u.Username != ids[0] || u.DisplayName != "陈一" || u.Role != store.RoleCandidate || u.PasswordHash != "hash" || f.audits("signed_up") != 1 {
			t.Fatalf("account: %+v", u)
		}
		_, err = f.svc.SignUpAccount(f.ctx, certify.SignUp{Name: "陈一", IDNumber: ids[0]}, hash)
		isErr(t, "the same ID number", err, certify.ErrIDRegistered)
		f.register("junior", 1, "") // an account made by an admin, its registration with ids[1]
		_, err = f.svc.SignUpAccount(f.ctx, certify.SignUp{Name: "王小明", IDNumber: ids[1]}, hash)
		isErr(t, "an ID number with a registration", err, certify.ErrIDRegistered)
		if hashed != 1 {
			t.Fatalf("%d passwords hashed, want 1", hashed)
		}
		// They register themselves, with the ID number they signed up with.
		_, err = f.svc.Register(f.ctx, u.ID, u.ID, f.levels["junior"], applicant(2, ""))
		isErr(t, "registering another person's ID number", err, certify.ErrIDNotAccount)
		_, err = f.svc.Register(f.ctx, u.ID, u.ID, f.levels["junior"], applicant(0, ""))
		f.must(err)
	})
}
