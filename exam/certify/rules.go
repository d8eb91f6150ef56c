// Package certify carries a candidate's path to a certificate beyond the
// exam day: registration and eligibility, the fee ledger, the practical
// assessment and comprehensive review with their panels, retakes, the
// certificate itself and its public verification. The rules here are pure
// functions of a programme's Policy; service.go keeps their state.
package certify

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

// Policy is what the certificate programme reads from a programme's rules:
// the exam rules and those only the certificate path needs.
type Policy struct {
	exam.Rules
	// ScoreMethod combines panel scores: "mean" (default) or "median".
	ScoreMethod string `json:"score_method"`
	// Holidays are public holidays (YYYY-MM-DD) that are not working days;
	// WorkingWeekends are weekend days worked instead (调休).
	Holidays        []string `json:"holidays"`
	WorkingWeekends []string `json:"working_weekends"`
	// MaxUploadBytes limits a submitted document.
	MaxUploadBytes int64 `json:"max_upload_bytes"`
}

// Score methods.
const (
	Mean   = "mean"
	Median = "median"
)

// DefaultMaxUpload is the default limit of a submitted document (10 MB).
const DefaultMaxUpload = 10 << 20

// ParsePolicy reads a programme's rules JSON over the certificate's
// defaults (exam.DefaultRules, mean scores, 10 MB uploads).
func ParsePolicy(rules string) (Policy, error) {
	p := Policy{Rules: exam.DefaultRules, ScoreMethod: Mean, MaxUploadBytes: DefaultMaxUpload}
	if strings.TrimSpace(rules) != "" {
		if err := json.Unmarshal([]byte(rules), &p); err != nil {
			return p, fmt.Errorf("certify: programme rules: %w", err)
		}
	}
	// Empty calendars are empty lists, never null, for the rules screen.
	p.Holidays, p.WorkingWeekends = orEmpty(p.Holidays), orEmpty(p.WorkingWeekends)
	if p.ScoreMethod != Mean && p.ScoreMethod != Median {
		return p, fmt.Errorf("certify: score method %q is mean or median", p.ScoreMethod)
	}
	for _, d := range append(slices.Clone(p.Holidays), p.WorkingWeekends...) {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return p, fmt.Errorf("certify: calendar day %q is not YYYY-MM-DD", d)
		}
	}
	return p, nil
}

func orEmpty(days []string) []string {
	if days == nil {
		return []string{}
	}
	return days
}

// idWeights are the ISO 7064 MOD 11-2 weights of the first 17 digits.
var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// CheckIDNumber validates an 18-digit Chinese resident ID number: digits,
// a real date of birth, and the check character (ISO 7064 MOD 11-2; X for
// 10). It returns the number normalised (upper-case X).
func CheckIDNumber(id string) (string, error) {
	id = strings.ToUpper(strings.TrimSpace(id))
	if len(id) != 18 {
		return "", ErrIDNumber
	}
	sum := 0
	for i := range 17 {
		c := id[i]
		if c < '0' || c > '9' {
			return "", ErrIDNumber
		}
		sum += int(c-'0') * idWeights[i]
	}
	if "10X98765432"[sum%11] != id[17] {
		return "", ErrIDNumber
	}
	born, err := time.Parse("20060102", id[6:14])
	if err != nil || born.Year() < 1800 {
		return "", ErrIDNumber
	}
	return id, nil
}

// IDCheckChar computes the check character of 17 digits (for tests and
// fixtures).
func IDCheckChar(first17 string) byte {
	sum := 0
	for i := range 17 {
		sum += int(first17[i]-'0') * idWeights[i]
	}
	return "10X98765432"[sum%11]
}

// Educations, lowest first. secondary_vocational (中专/职高) counts as
// equivalent to high school.
var Educations = []string{"junior_high", "high_school", "secondary_vocational", "associate", "bachelor", "master", "doctorate"}

func educationRank(e string) int {
	switch e {
	case "junior_high":
		return 1
	case "high_school", "secondary_vocational":
		return 2
	case "associate":
		return 3
	case "bachelor":
		return 4
	case "master":
		return 5
	case "doctorate":
		return 6
	}
	return 0
}

// Applicant is what a registration states about a candidate.
type Applicant struct {
	Name          string `json:"name"`
	IDNumber      string `json:"id_number"`
	Education     string `json:"education"`
	TrainingHours int    `json:"training_hours"`
	Organisation  string `json:"organisation"`
	// Email and Mobile, when given, are where the candidate's notices go.
	Email  string `json:"email,omitempty"`
	Mobile string `json:"mobile,omitempty"`
}

// CheckEligibility applies the programme's rules to an applicant for a
// level; the error names the rule that failed.
func CheckEligibility(p Policy, lv exam.LevelSpec, a Applicant) (Applicant, error) {
	a.Name, a.Organisation = strings.TrimSpace(a.Name), strings.TrimSpace(a.Organisation)
	if a.Name == "" || a.IDNumber == "" || a.Education == "" || utf8.RuneCountInString(a.Name) > 64 {
		return a, ErrMissingField
	}
	id, err := CheckIDNumber(a.IDNumber)
	if err != nil {
		return a, err
	}
	a.IDNumber = id
	if educationRank(a.Education) == 0 {
		return a, fmt.Errorf("%w: unknown education %q", ErrEducation, a.Education)
	}
	if educationRank(a.Education) < educationRank(p.MinEducation) {
		return a, fmt.Errorf("%w: %s is below %s", ErrEducation, a.Education, p.MinEducation)
	}
	if a.TrainingHours < lv.TrainingHours {
		return a, fmt.Errorf("%w: %d standard hours, the %s level requires %d", ErrTrainingHours, a.TrainingHours, lv.Code, lv.TrainingHours)
	}
	return a, nil
}

// Fee items of the ledger.
const (
	ItemRegistration = "registration"
	ItemRetake       = "retake"
)

// Fee is what an item of the ledger costs under the programme: the level's
// registration fee, or the retake fee.
func Fee(p Policy, lv exam.LevelSpec, item string) int64 {
	if item == ItemRetake {
		return p.RetakeFeeCents
	}
	return lv.FeeCents
}

// PanelMember is a reviewer proposed for a panel.
type PanelMember struct {
	UserID       int64
	Organisation string
	// Declared is true when the member declared a conflict with the candidate.
	Declared bool
}

// CheckPanel applies the panel rules: at least MinPanelSize distinct
// members, an odd number, none from the candidate's organisation nor with a
// declared conflict.
func CheckPanel(p Policy, candidateOrg string, members []PanelMember) error {
	seen := map[int64]bool{}
	for _, m := range members {
		if m.UserID == 0 || seen[m.UserID] {
			return ErrPanelMember
		}
		seen[m.UserID] = true
	}
	if len(members) < p.MinPanelSize {
		return fmt.Errorf("%w: %d members, at least %d", ErrPanelSize, len(members), p.MinPanelSize)
	}
	if len(members)%2 == 0 {
		return fmt.Errorf("%w: %d members", ErrPanelOdd, len(members))
	}
	for _, m := range members {
		if Conflicted(candidateOrg, m) {
			return fmt.Errorf("%w: member %d", ErrConflict, m.UserID)
		}
	}
	return nil
}

// Conflicted reports whether a member may not assess a candidate of org.
func Conflicted(candidateOrg string, m PanelMember) bool {
	return m.Declared || (sameOrg(candidateOrg, m.Organisation))
}

func sameOrg(a, b string) bool {
	a, b = strings.TrimSpace(a), strings.TrimSpace(b)
	return a != "" && strings.EqualFold(a, b)
}

// CheckScore validates one panel member's score.
func CheckScore(score float64, comment string) error {
	if math.IsNaN(score) || score < 0 || score > 100 || strings.TrimSpace(comment) == "" {
		return ErrScore
	}
	return nil
}

// Aggregate combines the panel's scores by the programme's method, rounded
// to two decimals.
func Aggregate(method string, scores []float64) float64 {
	if len(scores) == 0 {
		return 0
	}
	var v float64
	if method == Median {
		s := slices.Sorted(slices.Values(scores))
		n := len(s)
		if n%2 == 1 {
			v = s[n/2]
		} else {
			v = (s[n/2-1] + s[n/2]) / 2
		}
	} else {
		for _, x := range scores {
			v += x
		}
		v /= float64(len(scores))
	}
	return math.Round(v*100) / 100
}

// Passes reports whether a component score passes.
func Passes(p Policy, score float64) bool { return store.Passes(score, p.PassMark) }

// Outcome is how one sitting of a component ended.
type Outcome string

// Outcomes of a sitting.
const (
	Pending Outcome = "pending"
	Pass    Outcome = "pass"
	Fail    Outcome = "fail"
)

// Component states on a candidate's path.
const (
	StatePending   = "pending"   // not decided yet
	StatePassed    = "passed"    // passed
	StateRetake    = "retake"    // failed; a retake is left
	StateExhausted = "exhausted" // failed every allowed sitting: register again
)

// ComponentState applies the retake rule to the outcomes of a component's
// sittings (the first, then the retakes, in order), returning the state
// and how many retakes are left.
func ComponentState(p Policy, sittings []Outcome) (string, int) {
	left := p.RetakesPerComponent - max(0, len(sittings)-1)
	switch {
	case slices.Contains(sittings, Pass):
		return StatePassed, left
	case len(sittings) == 0 || sittings[len(sittings)-1] == Pending:
		return StatePending, left
	case left <= 0:
		return StateExhausted, 0
	}
	return StateRetake, left
}

// LevelState is a level's state from its components' states: passed when
// every component passed, failed when one is exhausted.
func LevelState(states []string) string {
	all := len(states) > 0
	for _, s := range states {
		if s == StateExhausted {
			return StateExhausted
		}
		if s != StatePassed {
			all = false
		}
	}
	if all {
		return StatePassed
	}
	return StatePending
}

// DedicatedSession reports whether the candidates waiting for a retake of
// one component warrant a dedicated retake session (more than the threshold).
func DedicatedSession(p Policy, waiting int) bool { return waiting > p.DedicatedRetakeThreshold }

// China is the time zone of the programme's calendar (UTC+8, no DST).
var China = time.FixedZone("CST", 8*3600)

// WorkingDay reports whether day is a working day under the calendar:
// Monday to Friday except holidays, plus the weekend days worked instead.
func WorkingDay(p Policy, day time.Time) bool {
	d := day.In(China).Format(time.DateOnly)
	if slices.Contains(p.WorkingWeekends, d) {
		return true
	}
	if slices.Contains(p.Holidays, d) {
		return false
	}
	wd := day.In(China).Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// SubmissionDeadline is the end (midnight, China time) of the N-th working
// day after the day of the theory exam.
func SubmissionDeadline(p Policy, theory time.Time) time.Time {
	t := theory.In(China)
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, China)
	for n := 0; n < p.SubmissionWorkingDays; {
		day = day.AddDate(0, 0, 1)
		if WorkingDay(p, day) {
			n++
		}
	}
	return day.AddDate(0, 0, 1)
}

// Document types accepted for a submission.
const (
	PDF  = "pdf"
	DOCX = "docx"
)

// SniffDocument checks a submitted document by its content: a PDF starts
// with %PDF-, a DOCX is a zip archive holding word/document.xml. Its name
// and the browser's content type are not trusted.
func SniffDocument(p Policy, b []byte) (string, error) {
	switch {
	case len(b) == 0:
		return "", ErrEmptyFile
	case int64(len(b)) > p.MaxUploadBytes:
		return "", fmt.Errorf("%w: %d bytes, at most %d", ErrFileTooLarge, len(b), p.MaxUploadBytes)
	case bytes.HasPrefix(b, []byte("%PDF-")):
		return PDF, nil
	case bytes.HasPrefix(b, []byte("PK\x03\x04")):
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return "", ErrFileType
		}
		for _, f := range zr.File {
			if f.Name == "word/document.xml" {
				return DOCX, nil
			}
		}
	}
	return "", ErrFileType
}

// MaskName hides a holder's name but for its first character (and its last,
// for names of three or more), as a certificate check shows it.
func MaskName(name string) string {
	r := []rune(strings.TrimSpace(name))
	switch len(r) {
	case 0:
		return ""
	case 1:
		return string(r)
	case 2:
		return string(r[0]) + "*"
	}
	return string(r[0]) + strings.Repeat("*", len(r)-2) + string(r[len(r)-1])
}
