package proctor

import "errors"

// Sentinel errors of the proctor domain; each names the rule that refused.
var (
	// ErrRatio: an invigilator would be responsible for more candidates than the programme allows.
	ErrRatio = &ProctorError{"rule_ratio", 409, "each invigilator may be responsible for at most the programme's ratio of candidates (default 15)"}
	// ErrTooFewInvigilators: a room must have at least the programme's minimum of invigilators (default 2).
	ErrTooFewInvigilators = &ProctorError{"rule_min_invigilators", 409, "every room needs at least the programme's minimum of invigilators (default 2)"}
	// ErrOneResponsible: every candidate has exactly one responsible invigilator, who works in their room.
	ErrOneResponsible = &ProctorError{"rule_one_responsible", 409, "every candidate has exactly one responsible invigilator, an invigilator of their room"}
	// ErrBadRules: invigilation rules that cannot be met by any plan.
	ErrBadRules = errors.New("invigilation rules must have a positive ratio, room capacity and minimum per room")
)

// ProctorError is a proctoring error a client may see: a stable code and an
// HTTP status.
type ProctorError struct {
	code   string
	status int
	text   string
}

func (e *ProctorError) Error() string { return "proctor: " + e.text }

// Code is the stable code sent to clients.
func (e *ProctorError) Code() string { return e.code }

// Status is the HTTP status that fits the error.
func (e *ProctorError) Status() int { return e.status }

// Errors of the proctor service.
var (
	ErrNoAttempt = &ProctorError{"no_attempt", 404, "no proctored attempt"}
	ErrNotYours  = &ProctorError{"not_your_candidate", 403, "only the responsible invigilator, a chief invigilator of the session or an admin may do this"}
	ErrBadSignal = &ProctorError{"bad_signal", 400, "unknown signal kind or phase"}
	ErrBadAction = &ProctorError{"bad_action", 400, "the action is incomplete"}
	ErrNoMessage = &ProctorError{"no_message", 404, "no such message for this attempt"}
)
