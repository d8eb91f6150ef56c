package exam

import "github.com/examhall/examhall/store"

// Sentinel errors of the exam engine.
var (
	ErrNoAttempt       = store.NewError("exam", store.NotFound, "no_attempt", "no such attempt for this candidate")
	ErrNotStarted      = store.NewError("exam", store.Conflict, "not_started", "the attempt has not started")
	ErrEnded           = store.NewError("exam", store.Conflict, "attempt_ended", "the attempt has ended")
	ErrLate            = store.NewError("exam", store.Conflict, "late_answer", "the answer arrived after the deadline")
	ErrSessionNotOpen  = store.NewError("exam", store.Conflict, "session_not_open", "the session has not opened yet")
	ErrAdmissionClosed = store.NewError("exam", store.Conflict, "admission_closed", "the admission window has closed")
	ErrNotAdmitted     = store.NewError("exam", store.Conflict, "not_admitted", "the candidate has not been admitted yet")
	ErrUnknownQuestion = store.NewError("exam", store.Invalid, "unknown_question", "the question is not on this paper")
	ErrBadValue        = store.NewError("exam", store.Invalid, "bad_value", "the answer does not fit the question")
	ErrBadSeq          = store.NewError("exam", store.Invalid, "bad_seq", "sequence numbers are positive integers")
	ErrBadBlueprint    = store.NewError("exam", store.Invalid, "bad_blueprint", "the blueprint cannot be drawn from the bank")
	ErrUnavailable     = store.NewError("exam", store.Unavailable, "unavailable", "the answer could not be stored; resend it")
	ErrChainBroken     = store.NewError("exam", store.Internal, "chain_broken", "the attempt's log does not verify")
	ErrFormalRunning   = store.NewError("exam", store.Conflict, "formal_running", "no mock test while the formal exam runs")
	ErrMockLimit       = store.NewError("exam", store.TooMany, "mock_limit", "at most 5 mock tests in 24 hours")
	ErrMockOnly        = store.NewError("exam", store.Invalid, "mock_only", "only a mock exam can be started this way")
)
