package store

import "time"

// Affiliation is the organisation a staff member (a panel member) belongs
// to, for conflict-of-interest checks.
type Affiliation struct {
	UserID       int64 `gorm:"primaryKey"`
	Organisation string
}

// Registration is a candidate's registration for a level of a programme,
// with what they stated. Status is open, passed (certified) or closed
// (a retake failed: register again).
type Registration struct {
	ID            int64
	CandidateID   int64
	LevelID       int64
	Name          string
	IDNumber      string `gorm:"column:id_number"`
	Education     string
	TrainingHours int
	Organisation  string
	Status        string
	CreatedBy     *int64
	CreatedAt     time.Time
}

// Fee is one charge of the ledger (the registration, a retake) and its
// payment: PaidAt, Method ("manual" for an admin's entry, later a
// gateway's name) and Reference (the receipt or transaction number).
type Fee struct {
	ID             int64
	RegistrationID int64
	Item           string
	Component      string
	AmountCents    int64
	CreatedAt      time.Time
	PaidAt         *time.Time
	Method         string
	Reference      string
	PaidBy         *int64
}

// Sitting is one sitting of a component of a registration: N is 1 for the
// first, 2 for the retake. A theory sitting has a seat in an exam session;
// a practical or review sitting has a submitted document, scored by a panel
// (and for the review a scheduled defence). Score and Passed are set when
// the result is known.
type Sitting struct {
	ID             int64
	RegistrationID int64
	Component      string
	N              int
	FeeID          *int64
	SeatID         *int64
	OpenedAt       *time.Time
	FileName       string
	FileType       string
	FileSize       int64
	FileSHA256     string `gorm:"column:file_sha256"`
	FilePath       string
	SubmittedAt    *time.Time
	DefenceAt      *time.Time
	Score          *float64
	Passed         *bool
	DecidedAt      *time.Time
	CreatedAt      time.Time
}

// PanelSeat is a panel member of a sitting and their score, hidden from the
// other members until all have scored.
type PanelSeat struct {
	SittingID int64 `gorm:"primaryKey"`
	UserID    int64 `gorm:"primaryKey"`
	Score     *float64
	Comment   string
	ScoredAt  *time.Time
}

// DeclaredConflict is a reviewer's declaration that they may not assess a
// registration's candidate.
type DeclaredConflict struct {
	UserID         int64 `gorm:"primaryKey"`
	RegistrationID int64 `gorm:"primaryKey"`
	Reason         string
	DeclaredAt     time.Time
}

// Certificate is issued when a registration's level is passed. Number is
// unique and not guessable; Code is the verification code on the page.
type Certificate struct {
	ID             int64
	RegistrationID int64
	Number         string
	Code           string
	HolderName     string
	IDNumber       string `gorm:"column:id_number"`
	LevelID        int64
	IssuedAt       time.Time
	RevokedAt      *time.Time
	RevokeReason   string
	RevokedBy      *int64
}
