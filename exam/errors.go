package exam

import "net/http"

// Error is an exam error a client may see: a stable code (the key of its
// message in the dictionary is "error."+code) and an HTTP status.
type Error struct {
	code   string
	status int
	text   string
}

func (e *Error) Error() string { return "exam: " + e.text }

// Code is the stable code sent to clients.
func (e *Error) Code() string { return e.code }

// Status is the HTTP status that fits the error.
func (e *Error) Status() int { return e.status }

// Sentinel errors of the exam engine.
var (
	ErrNoAttempt       = &Error{"no_attempt", http.StatusNotFound, "no such attempt for this candidate"}
	ErrNotStarted      = &Error{"not_started", http.StatusConflict, "the attempt has not started"}
	ErrEnded           = &Error{"attempt_ended", http.StatusConflict, "the attempt has ended"}
	ErrLate            = &Error{"late_answer", http.StatusConflict, "the answer arrived after the deadline"}
	ErrSessionNotOpen  = &Error{"session_not_open", http.StatusConflict, "the session has not opened yet"}
	ErrAdmissionClosed = &Error{"admission_closed", http.StatusConflict, "the admission window has closed"}
	ErrNotAdmitted     = &Error{"not_admitted", http.StatusConflict, "the candidate has not been admitted yet"}
	ErrUnknownQuestion = &Error{"unknown_question", http.StatusBadRequest, "the question is not on this paper"}
	ErrBadValue        = &Error{"bad_value", http.StatusBadRequest, "the answer does not fit the question"}
	ErrBadSeq          = &Error{"bad_seq", http.StatusBadRequest, "sequence numbers are positive integers"}
	ErrBadBlueprint    = &Error{"bad_blueprint", http.StatusBadRequest, "the blueprint cannot be drawn from the bank"}
	ErrUnavailable     = &Error{"unavailable", http.StatusServiceUnavailable, "the answer could not be stored; resend it"}
	ErrChainBroken     = &Error{"chain_broken", http.StatusInternalServerError, "the attempt's log does not verify"}
	ErrMockOnly        = &Error{"mock_only", http.StatusBadRequest, "only a mock exam can be started this way"}
)
