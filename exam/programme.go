// Package exam is the exam engine: programmes and their rules, question
// banks, papers, attempts, the server-owned clock, durable answers, grading
// and retakes.
package exam

import "github.com/examhall/examhall/store"

// Rules are a programme's configurable rules. DefaultRules carries the values
// of the 客服联络咨询师 certificate (shared/SEED-SUMMARY.md).
type Rules struct {
	// PassMark is the score out of 100 that passes any component.
	PassMark int `json:"pass_mark"`
	// The invigilation rules: invigilator_ratio, min_invigilators_per_room
	// and room_capacity.
	store.Invigilation
	// RetakesPerComponent is how many retakes each component allows.
	RetakesPerComponent int `json:"retakes_per_component"`
	// RetakeFeeCents is the fee of one retake, in fen.
	RetakeFeeCents int64 `json:"retake_fee_cents"`
	// DedicatedRetakeThreshold: with more candidates than this needing a
	// retake, a dedicated retake session may be opened.
	DedicatedRetakeThreshold int `json:"dedicated_retake_threshold"`
	// MinPanelSize is the smallest review panel; panels are always odd.
	MinPanelSize int `json:"min_panel_size"`
	// SubmissionWorkingDays is how many working days after the theory exam a
	// practical plan or review materials may be submitted.
	SubmissionWorkingDays int `json:"submission_working_days"`
	// MinEducation is the lowest education accepted.
	MinEducation string `json:"min_education"`
	// TheoryMinutes is the length of the theory exam.
	TheoryMinutes int `json:"theory_minutes"`
}

// DefaultRules are the certificate's rules.
var DefaultRules = Rules{
	PassMark:                 80,
	Invigilation:             store.Invigilation{Ratio: 15, MinPerRoom: 2, RoomCapacity: 15},
	RetakesPerComponent:      1,
	RetakeFeeCents:           200_00,
	DedicatedRetakeThreshold: 50,
	MinPanelSize:             3,
	SubmissionWorkingDays:    10,
	MinEducation:             "high_school",
	TheoryMinutes:            120,
}

// Component is a part of a level that a candidate must pass.
type Component string

// The components of the certificate.
const (
	Theory    Component = "theory"    // 理论考试
	Practical Component = "practical" // 实践考核
	Review    Component = "review"    // 综合评审
)

// LevelSpec describes one level of a programme.
type LevelSpec struct {
	Code          string
	Rank          int
	NameZh        string
	NameEn        string
	TrainingHours int
	FeeCents      int64
	Components    []Component
}

// DefaultLevels are the certificate's three levels.
var DefaultLevels = []LevelSpec{
	{"junior", 1, "初级", "Junior", 48, 800_00, []Component{Theory}},
	{"intermediate", 2, "中级", "Intermediate", 72, 1200_00, []Component{Theory, Practical}},
	{"senior", 3, "高级", "Senior", 108, 1600_00, []Component{Theory, Review}},
}
