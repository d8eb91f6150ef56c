package store

import "time"

// Role is what an account may do. Every handler checks it.
type Role string

// The roles of the platform. A reviewer replays and rules on any attempt;
// a panel member (often an external assessor) sees only the sittings of the
// panels they sit on, and nothing of the exam or its recordings.
const (
	RoleCandidate   Role = "candidate"
	RoleInvigilator Role = "invigilator"
	RoleReviewer    Role = "reviewer"
	RolePanel       Role = "panel"
	RoleAdmin       Role = "admin"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool {
	switch r {
	case RoleCandidate, RoleInvigilator, RoleReviewer, RolePanel, RoleAdmin:
		return true
	}
	return false
}

// User is an account. Candidates log in with the ticket of one of their seats;
// staff log in with their username.
type User struct {
	ID           int64
	Role         Role
	Username     string
	PasswordHash string `json:"-"`
	DisplayName  string
	// Chief marks a chief invigilator, who sees every room of a session.
	Chief    bool
	Disabled bool
	// Photo names a candidate's registered photo (sha256.ext under the data
	// dir's photos/), empty when none is on file.
	Photo string
	// Email and Mobile are where notifications reach the person; empty:
	// not by that channel.
	Email     string
	Mobile    string
	CreatedAt time.Time
}

// AuthSession is a logged-in browser. Only the SHA-256 of the cookie token is
// stored, so a copy of the database cannot be used to log in.
type AuthSession struct {
	ID        int64
	TokenHash string
	CSRFToken string `gorm:"column:csrf_token"`
	UserID    int64
	IP        string
	UserAgent string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Programme is a certificate programme; Rules holds its configurable rules as
// JSON (pass mark, invigilation ratio, retakes ...), read by the domain.
type Programme struct {
	ID        int64
	Code      string
	NameZh    string
	NameEn    string
	Issuer    string
	Rules     string
	CreatedAt time.Time
}

// Level is one level of a programme (junior, intermediate, senior).
// Components is a JSON list of the components a candidate must pass.
type Level struct {
	ID            int64
	ProgrammeID   int64
	Code          string
	Rank          int
	NameZh        string
	NameEn        string
	TrainingHours int
	FeeCents      int64
	Components    string
}

// Question is one item of a programme's bank. Options, Answer and Tags are JSON.
type Question struct {
	ID            int64
	ProgrammeID   int64
	Kind          string
	Stem          string
	Options       string
	Answer        string `json:"-"`
	Tags          string
	Difficulty    int
	PartialCredit bool
	Explanation   string `json:"-"`
	// Pool is "formal" (formal exams only) or "practice" (mock tests only).
	Pool      string `gorm:"default:formal"`
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Exam is a timed test of a programme level: the formal theory exam or a mock.
// Blueprint is JSON describing the sections drawn from the bank.
type Exam struct {
	ID              int64
	ProgrammeID     int64
	LevelID         *int64
	Code            string
	Kind            string
	TitleZh         string
	TitleEn         string
	DurationMinutes int
	PassMark        int
	Blueprint       string
	// Policy is JSON: the exam's clock rules (grace, outage credit).
	Policy string
	// ProctorRules is JSON: overrides of the proctoring rules by signal kind.
	ProctorRules string
	CreatedAt    time.Time
}

// ExamSession is one sitting of an exam: candidates may start between
// StartsAt and AdmissionEndsAt, and every attempt ends by EndsAt.
type ExamSession struct {
	ID              int64
	ExamID          int64
	Code            string
	Title           string
	StartsAt        time.Time
	AdmissionEndsAt time.Time
	EndsAt          time.Time
	AdmissionMode   string
	CreatedAt       time.Time
}

// Room is a virtual exam room (考场) of a session.
type Room struct {
	ID        int64
	SessionID int64
	Code      string
	Name      string
}

// RoomInvigilator puts an invigilator in a room.
type RoomInvigilator struct {
	RoomID int64 `gorm:"primaryKey"`
	UserID int64 `gorm:"primaryKey"`
}

// Seat is a candidate's place in a session: their ticket (准考证号), room and
// responsible invigilator.
type Seat struct {
	ID            int64
	SessionID     int64
	RoomID        int64
	CandidateID   int64
	InvigilatorID *int64
	Ticket        string
	SeatNo        int
	CreatedAt     time.Time
}

// AuditEvent is one entry of the audit log: who did what to which object.
type AuditEvent struct {
	ID         int64
	At         time.Time
	ActorID    *int64
	Action     string
	ObjectType string
	ObjectID   string
	IP         string
	Detail     string
}

// Setting is a key-value pair the platform keeps about itself.
type Setting struct {
	Key   string `gorm:"primaryKey"`
	Value string
}

// Attempt is one candidate's sitting of an exam: its paper (drawn when the
// session was scheduled), its state and its clock. Deadline is fixed when the
// attempt starts and moves only by an audited time credit.
type Attempt struct {
	ID              int64
	ExamID          int64
	SessionID       *int64
	SeatID          *int64
	CandidateID     int64
	Kind            string
	Status          string
	Seed            int64
	Paper           string
	StartedAt       *time.Time
	Deadline        *time.Time
	EndedAt         *time.Time
	EndReason       string
	CreditedSeconds int
	Score           *float64
	Passed          *bool
	CreatedAt       time.Time
}

// Answer is the current answer of one question of an attempt: the value of
// the highest sequence number received for it.
type Answer struct {
	AttemptID  int64 `gorm:"primaryKey"`
	QuestionID int64 `gorm:"primaryKey"`
	Value      string
	Seq        int64
	Marked     bool
	MarkSeq    int64
	SavedAt    time.Time
	Points     *float64
}

// AttemptEvent is one entry of an attempt's append-only, hash-chained log.
type AttemptEvent struct {
	AttemptID int64 `gorm:"primaryKey"`
	N         int64 `gorm:"primaryKey"`
	At        time.Time
	Kind      string
	ClientSeq int64
	Data      string
	PrevHash  string
	Hash      string
}

// Signal is one observation about an attempt (the page left, a camera
// lost...), kept as evidence.
type Signal struct {
	ID         int64
	AttemptID  int64
	Kind       string
	Source     string
	Phase      string
	At         time.Time
	DurationMs int64
	Detail     string
}

// Flag is a violation raised by the rules from signals, for an invigilator
// or reviewer to confirm or dismiss.
type Flag struct {
	ID         int64
	AttemptID  int64
	Kind       string
	Severity   string
	Count      int
	FirstAt    time.Time
	LastAt     time.Time
	DurationMs int64
	ReasonZh   string
	ReasonEn   string
	Evidence   string
	Status     string
	Note       string
	DecidedBy  *int64
	DecidedAt  *time.Time
}

// ProctorMessage is a message or a formal warning from an invigilator to a
// candidate, with when the candidate acknowledged it.
type ProctorMessage struct {
	ID        int64
	AttemptID int64
	SenderID  int64
	Kind      string
	Body      string
	SentAt    time.Time
	AckedAt   *time.Time
}

// Recording is one WebM file of one device of an attempt: one per
// connection, rolled every few minutes. State is "open" while written,
// "closed" when finished (seekable: Cues and Duration written), "repaired"
// when recovered after a crash.
type Recording struct {
	ID         int64
	AttemptID  int64
	Device     string
	Connection string
	Path       string
	Codecs     string
	StartedAt  time.Time
	EndedAt    *time.Time
	SizeBytes  int64
	State      string
	// BlobKey is the segment's key in object storage once uploaded; the
	// local file is then gone.
	BlobKey string
	// Node is the node that recorded it ("" before clusters).
	Node string
}

// PhonePairing is a single-use link that pairs a phone with an attempt, and
// the device key the paired phone reconnects with.
type PhonePairing struct {
	ID            int64
	AttemptID     int64
	TokenHash     string
	CreatedAt     time.Time
	ExpiresAt     time.Time
	UsedAt        *time.Time
	DeviceKeyHash *string
	RevokedAt     *time.Time
}

// AttemptReview is a reviewer's final decision on an attempt: "valid", or
// "invalid" with a reason (an invalid attempt does not pass).
type AttemptReview struct {
	AttemptID int64 `gorm:"primaryKey"`
	Decision  string
	Reason    string
	DecidedBy int64
	DecidedAt time.Time
}

// ReadinessStep is a step a candidate finished before the exam (device
// check, rules accepted, ...), with its details (the device check's results).
type ReadinessStep struct {
	AttemptID int64  `gorm:"primaryKey"`
	Step      string `gorm:"primaryKey"`
	DoneAt    time.Time
	Detail    string
}

// Invigilation is a programme's invigilation rules, the one definition of
// them and of their names in settings and on the wire.
type Invigilation struct {
	// Ratio is the most candidates one invigilator is responsible for.
	Ratio int `json:"invigilator_ratio"`
	// MinPerRoom is the fewest invigilators a room may have.
	MinPerRoom int `json:"min_invigilators_per_room"`
	// RoomCapacity is the most candidates in one room: one console grid.
	RoomCapacity int `json:"room_capacity"`
}

// Passes is the pass rule, the one place it is written: a score (out of
// 100) passes at or above the pass mark. The exam engine, the review's
// decisions and the certificate's components all ask it.
func Passes(score float64, passMark int) bool { return score >= float64(passMark) }
