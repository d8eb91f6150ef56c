package certify

import "net/http"

// Error is a certificate-programme error a client may see: a stable code
// (its message in the dictionary is "error."+code, naming the rule that
// refused) and an HTTP status.
type Error struct {
	code   string
	status int
	text   string
}

func (e *Error) Error() string { return "certify: " + e.text }

// Code is the stable code sent to clients.
func (e *Error) Code() string { return e.code }

// Status is the HTTP status that fits the error.
func (e *Error) Status() int { return e.status }

// Sentinel errors of the certificate programme. Each refusal names its rule.
var (
	ErrIDNumber        = &Error{"id_number", http.StatusBadRequest, "the ID number is not a valid 18-digit resident ID (checksum ISO 7064 MOD 11-2)"}
	ErrMissingField    = &Error{"registration_incomplete", http.StatusBadRequest, "name, ID number, education, training hours and level are required"}
	ErrEducation       = &Error{"rule_education", http.StatusUnprocessableEntity, "the education is below the programme's minimum"}
	ErrTrainingHours   = &Error{"rule_training_hours", http.StatusUnprocessableEntity, "the training hours are below the level's minimum"}
	ErrRegistered      = &Error{"rule_already_registered", http.StatusConflict, "an open registration or a certificate for this level exists"}
	ErrUnknownLevel    = &Error{"unknown_level", http.StatusBadRequest, "no such level"}
	ErrNotPaid         = &Error{"rule_fee_unpaid", http.StatusConflict, "seating for an exam session requires a paid registration"}
	ErrAlreadyPaid     = &Error{"fee_already_paid", http.StatusConflict, "the fee is already paid"}
	ErrReceipt         = &Error{"receipt_required", http.StatusBadRequest, "a payment needs a receipt reference"}
	ErrPanelSize       = &Error{"rule_panel_size", http.StatusUnprocessableEntity, "a panel needs at least the programme's minimum number of members"}
	ErrPanelOdd        = &Error{"rule_panel_odd", http.StatusUnprocessableEntity, "a panel always has an odd number of members"}
	ErrPanelMember     = &Error{"panel_member", http.StatusBadRequest, "panel members are distinct reviewers"}
	ErrConflict        = &Error{"rule_conflict_of_interest", http.StatusConflict, "a panel member may not assess a candidate of their own organisation or one they declared a conflict with"}
	ErrNotOnPanel      = &Error{"not_on_panel", http.StatusForbidden, "only a member of the panel may do this"}
	ErrScore           = &Error{"bad_score", http.StatusBadRequest, "a score is 0 to 100 with a comment"}
	ErrNotOpen         = &Error{"component_not_open", http.StatusConflict, "this component is not open for that now"}
	ErrEmptyFile       = &Error{"file_empty", http.StatusBadRequest, "the file is empty"}
	ErrFileTooLarge    = &Error{"file_too_large", http.StatusRequestEntityTooLarge, "the file is larger than the programme allows"}
	ErrFileType        = &Error{"file_type", http.StatusUnsupportedMediaType, "the file is not a PDF or DOCX document (checked by its content)"}
	ErrLate            = &Error{"rule_submission_deadline", http.StatusConflict, "the submission deadline (working days after the theory exam) has passed"}
	ErrNoRetake        = &Error{"rule_retakes_used", http.StatusConflict, "the component's retake is used up; register again"}
	ErrRetakeNotNeeded = &Error{"retake_not_needed", http.StatusConflict, "this component needs no retake now"}
	ErrNoSession       = &Error{"no_session", http.StatusConflict, "no scheduled session of this level's theory exam to seat into"}
	ErrRevoked         = &Error{"certificate_revoked", http.StatusConflict, "the certificate is already revoked"}
	ErrReason          = &Error{"reason_required", http.StatusBadRequest, "this action needs a reason"}
	ErrImport          = &Error{"import_invalid", http.StatusBadRequest, "the CSV has invalid lines; nothing was imported"}
	ErrIDRegistered    = &Error{"id_number_registered", http.StatusConflict, "an account or a registration with this ID number exists; log in instead"}
	ErrIDNotAccount    = &Error{"id_number_not_account", http.StatusUnprocessableEntity, "a candidate who signed up registers with the ID number they signed up with"}
	ErrRuleValue       = &Error{"rule_value", http.StatusBadRequest, "a rule's value is out of its bounds; nothing was changed"}
)

// AllErrors lists every sentinel, for the dictionary test.
var AllErrors = []*Error{ErrIDNumber, ErrMissingField, ErrEducation, ErrTrainingHours, ErrRegistered, ErrUnknownLevel,
	ErrNotPaid, ErrAlreadyPaid, ErrReceipt, ErrPanelSize, ErrPanelOdd, ErrPanelMember, ErrConflict, ErrNotOnPanel, ErrScore,
	ErrNotOpen, ErrEmptyFile, ErrFileTooLarge, ErrFileType, ErrLate, ErrNoRetake, ErrRetakeNotNeeded, ErrNoSession,
	ErrRevoked, ErrReason, ErrImport, ErrRuleValue, ErrIDRegistered, ErrIDNotAccount}
