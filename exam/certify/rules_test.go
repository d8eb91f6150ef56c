package certify

import (
	"archive/zip"
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/examhall/examhall/exam"
)

func policy(t *testing.T, rules string) Policy {
	t.Helper()
	p, err := ParsePolicy(rules)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// validID makes a valid ID number from 17 digits.
func validID(first17 string) string { return first17 + string(IDCheckChar(first17)) }

func TestIDNumberChecksum(t *testing.T) {
	for _, c := range []struct {
		id string
		ok bool
	}{
		{"11010519491231002X", true}, // the standard's published example
		{"11010519491231002x", true}, // lower-case x is accepted
		{"110105194912310021", false},
		{"440524188001010014", true},
		{"440524188001010015", false},
		{validID("11010120000230123"), false}, // 30 February
		{"1101051949123100", false},           // too short
		{"11010519491231002XX", false},
		{"1101051949123A002X", false},
		{"", false},
	} {
		got, err := CheckIDNumber(c.id)
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v, want ok=%v", c.id, err, c.ok)
		}
		if c.ok && got != strings.ToUpper(c.id) {
			t.Errorf("%q normalised to %q", c.id, got)
		}
		if !c.ok && !errors.Is(err, ErrIDNumber) {
			t.Errorf("%q: %v, want ErrIDNumber", c.id, err)
		}
	}
}

func TestEligibility(t *testing.T) {
	p := policy(t, "{}")
	lv := func(code string) exam.LevelSpec {
		for _, l := range exam.DefaultLevels {
			if l.Code == code {
				return l
			}
		}
		t.Fatal(code)
		return exam.LevelSpec{}
	}
	id := "11010519491231002X"
	for _, c := range []struct {
		name  string
		level string
		a     Applicant
		want  error
	}{
		{"junior at 48 hours, high school", "junior", Applicant{"张伟", id, "high_school", 48, "甲培训", "", ""}, nil},
		{"junior at 47 hours", "junior", Applicant{"张伟", id, "high_school", 47, "", "", ""}, ErrTrainingHours},
		{"intermediate at 72", "intermediate", Applicant{"张伟", id, "bachelor", 72, "", "", ""}, nil},
		{"intermediate at 71", "intermediate", Applicant{"张伟", id, "bachelor", 71, "", "", ""}, ErrTrainingHours},
		{"senior at 108", "senior", Applicant{"张伟", id, "master", 108, "", "", ""}, nil},
		{"senior at 107", "senior", Applicant{"张伟", id, "master", 107, "", "", ""}, ErrTrainingHours},
		{"secondary vocational is equivalent", "junior", Applicant{"张伟", id, "secondary_vocational", 48, "", "", ""}, nil},
		{"junior high is below", "junior", Applicant{"张伟", id, "junior_high", 100, "", "", ""}, ErrEducation},
		{"unknown education", "junior", Applicant{"张伟", id, "kindergarten", 100, "", "", ""}, ErrEducation},
		{"bad checksum", "junior", Applicant{"张伟", "110105194912310021", "high_school", 48, "", "", ""}, ErrIDNumber},
		{"no name", "junior", Applicant{" ", id, "high_school", 48, "", "", ""}, ErrMissingField},
	} {
		_, err := CheckEligibility(p, lv(c.level), c.a)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// The rule is configurable: a programme asking for a bachelor's degree.
	strict := policy(t, `{"min_education":"bachelor"}`)
	if _, err := CheckEligibility(strict, lv("junior"), Applicant{"张伟", id, "associate", 48, "", "", ""}); !errors.Is(err, ErrEducation) {
		t.Errorf("associate under a bachelor rule: %v", err)
	}
}

func TestFees(t *testing.T) {
	p := policy(t, "{}")
	for _, c := range []struct {
		level, item string
		want        int64
	}{
		{"junior", ItemRegistration, 800_00},
		{"intermediate", ItemRegistration, 1200_00},
		{"senior", ItemRegistration, 1600_00},
		{"junior", ItemRetake, 200_00},
		{"senior", ItemRetake, 200_00},
	} {
		var lv exam.LevelSpec
		for _, l := range exam.DefaultLevels {
			if l.Code == c.level {
				lv = l
			}
		}
		if got := Fee(p, lv, c.item); got != c.want {
			t.Errorf("%s %s: %d, want %d", c.level, c.item, got, c.want)
		}
	}
	if got := Fee(policy(t, `{"retake_fee_cents":15000}`), exam.DefaultLevels[0], ItemRetake); got != 150_00 {
		t.Errorf("configured retake fee: %d", got)
	}
}

func TestPanelRules(t *testing.T) {
	p := policy(t, "{}")
	m := func(id int64, org string) PanelMember { return PanelMember{UserID: id, Organisation: org} }
	for _, c := range []struct {
		name    string
		members []PanelMember
		want    error
	}{
		{"three members", []PanelMember{m(1, "A"), m(2, "B"), m(3, "")}, nil},
		{"five members", []PanelMember{m(1, "A"), m(2, "B"), m(3, ""), m(4, ""), m(5, "")}, nil},
		{"two members", []PanelMember{m(1, "A"), m(2, "B")}, ErrPanelSize},
		{"one member", []PanelMember{m(1, "A")}, ErrPanelSize},
		{"four members is even", []PanelMember{m(1, "A"), m(2, "B"), m(3, ""), m(4, "")}, ErrPanelOdd},
		{"a member twice", []PanelMember{m(1, "A"), m(1, "A"), m(3, "")}, ErrPanelMember},
		{"same organisation", []PanelMember{m(1, "A"), m(2, "北京培训中心"), m(3, "")}, ErrConflict},
		{"same organisation, other case and spaces", []PanelMember{m(1, "A"), m(2, " 北京培训中心 "), m(3, "")}, ErrConflict},
		{"declared conflict", []PanelMember{m(1, "A"), {UserID: 2, Declared: true}, m(3, "")}, ErrConflict},
	} {
		err := CheckPanel(p, "北京培训中心", c.members)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// Empty organisations never conflict with each other.
	if Conflicted("", PanelMember{UserID: 1}) {
		t.Error("two empty organisations conflict")
	}
	if err := CheckPanel(policy(t, `{"min_panel_size":5}`), "", []PanelMember{m(1, ""), m(2, ""), m(3, "")}); !errors.Is(err, ErrPanelSize) {
		t.Errorf("configured minimum 5: %v", err)
	}
}

func TestScoring(t *testing.T) {
	for _, c := range []struct {
		method string
		scores []float64
		want   float64
	}{
		{Mean, []float64{80, 90, 70}, 80},
		{Mean, []float64{79, 80, 80}, 79.67},
		{Mean, []float64{100, 100, 0}, 66.67},
		{Median, []float64{100, 100, 0}, 100},
		{Median, []float64{60, 85, 90}, 85},
		{Median, []float64{60, 85, 90, 95, 20}, 85},
		{Median, []float64{70, 90}, 80},
		{Mean, nil, 0},
	} {
		if got := Aggregate(c.method, c.scores); got != c.want {
			t.Errorf("%s %v: %v, want %v", c.method, c.scores, got, c.want)
		}
	}
	p := policy(t, "{}")
	for _, c := range []struct {
		score float64
		pass  bool
	}{{80, true}, {79.99, false}, {100, true}, {0, false}, {79.67, false}} {
		if Passes(p, c.score) != c.pass {
			t.Errorf("pass mark 80, score %v: pass=%v", c.score, !c.pass)
		}
	}
	for _, c := range []struct {
		score   float64
		comment string
		ok      bool
	}{{0, "x", true}, {100, "x", true}, {-1, "x", false}, {100.5, "x", false}, {80, " ", false}} {
		if err := CheckScore(c.score, c.comment); (err == nil) != c.ok {
			t.Errorf("score %v %q: %v", c.score, c.comment, err)
		}
	}
	if _, err := ParsePolicy(`{"score_method":"mode"}`); err == nil {
		t.Error("an unknown score method is accepted")
	}
}

func TestRetakesAndReregistration(t *testing.T) {
	p := policy(t, "{}")
	for _, c := range []struct {
		name     string
		sittings []Outcome
		state    string
		left     int
	}{
		{"not sat yet", nil, StatePending, 1},
		{"first sitting under way", []Outcome{Pending}, StatePending, 1},
		{"passed first time", []Outcome{Pass}, StatePassed, 1},
		{"failed: one retake left", []Outcome{Fail}, StateRetake, 1},
		{"retake under way", []Outcome{Fail, Pending}, StatePending, 0},
		{"passed the retake", []Outcome{Fail, Pass}, StatePassed, 0},
		{"failed the retake: register again", []Outcome{Fail, Fail}, StateExhausted, 0},
	} {
		state, left := ComponentState(p, c.sittings)
		if state != c.state || left != c.left {
			t.Errorf("%s: %s with %d left, want %s with %d", c.name, state, left, c.state, c.left)
		}
	}
	two := policy(t, `{"retakes_per_component":2}`)
	if s, left := ComponentState(two, []Outcome{Fail, Fail}); s != StateRetake || left != 1 {
		t.Errorf("two retakes allowed, two fails: %s %d", s, left)
	}
	for _, c := range []struct {
		states []string
		want   string
	}{
		{[]string{StatePassed}, StatePassed},
		{[]string{StatePassed, StatePassed}, StatePassed},
		{[]string{StatePassed, StatePending}, StatePending},
		{[]string{StatePassed, StateRetake}, StatePending},
		{[]string{StatePassed, StateExhausted}, StateExhausted},
		{nil, StatePending},
	} {
		if got := LevelState(c.states); got != c.want {
			t.Errorf("level of %v: %s, want %s", c.states, got, c.want)
		}
	}
}

func TestDedicatedRetakeThreshold(t *testing.T) {
	p := policy(t, "{}")
	for _, c := range []struct {
		waiting int
		want    bool
	}{{0, false}, {1, false}, {50, false}, {51, true}, {200, true}} {
		if got := DedicatedSession(p, c.waiting); got != c.want {
			t.Errorf("%d waiting: %v, want %v", c.waiting, got, c.want)
		}
	}
	if !DedicatedSession(policy(t, `{"dedicated_retake_threshold":10}`), 11) {
		t.Error("configured threshold 10 ignored")
	}
}

func TestSubmissionDeadline(t *testing.T) {
	at := func(s string) time.Time {
		d, err := time.ParseInLocation("2006-01-02 15:04", s, China)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// Theory exam on Friday 2026-09-25; 1 October week is a holiday, with
	// Sunday 2026-09-27 worked instead.
	cal := `{"submission_working_days":5,"holidays":["2026-10-01","2026-10-02","2026-10-05","2026-10-06","2026-10-07"],"working_weekends":["2026-09-27"]}`
	for _, c := range []struct {
		name, rules, theory, want string
	}{
		{"five working days, no holidays", `{"submission_working_days":5}`, "2026-09-25 10:00", "2026-10-03 00:00"},
		{"with the holiday calendar", cal, "2026-09-25 10:00", "2026-10-09 00:00"},
		{"ten working days (default)", `{}`, "2026-11-02 09:00", "2026-11-17 00:00"},
	} {
		got := SubmissionDeadline(policy(t, c.rules), at(c.theory))
		if !got.Equal(at(c.want)) {
			t.Errorf("%s: %s, want %s", c.name, got.In(China), c.want)
		}
	}
	if _, err := ParsePolicy(`{"holidays":["1 Oct"]}`); err == nil {
		t.Error("a malformed holiday is accepted")
	}
}

// docx builds a minimal DOCX (or any zip) holding the named files.
func docx(t testing.TB, names ...string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, n := range names {
		w, _ := zw.Create(n)
		w.Write([]byte("<w:document/>"))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSniffDocument(t *testing.T) {
	p := policy(t, `{"max_upload_bytes":1000}`)
	for _, c := range []struct {
		name string
		body []byte
		kind string
		want error
	}{
		{"pdf", []byte("%PDF-1.7\n..."), PDF, nil},
		{"docx", docx(t, "[Content_Types].xml", "word/document.xml"), DOCX, nil},
		{"zip without a Word document", docx(t, "a.txt"), "", ErrFileType},
		{"png named .pdf", []byte("\x89PNG\r\n\x1a\n...."), "", ErrFileType},
		{"text", []byte("just a plan"), "", ErrFileType},
		{"truncated zip", []byte("PK\x03\x04 broken"), "", ErrFileType},
		{"empty", nil, "", ErrEmptyFile},
		{"too large", append([]byte("%PDF-"), make([]byte, 1000)...), "", ErrFileTooLarge},
	} {
		kind, err := SniffDocument(p, c.body)
		if kind != c.kind || !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: %q %v, want %q %v", c.name, kind, err, c.kind, c.want)
		}
	}
}

func TestMaskName(t *testing.T) {
	for in, want := range map[string]string{"张伟": "张*", "王小明": "王*明", "欧阳娜娜": "欧**娜", "李": "李", "": "", "Ann Lee": "A*****e"} {
		if got := MaskName(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
