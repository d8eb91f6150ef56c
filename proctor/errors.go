package proctor

import "errors"

// Sentinel errors of the proctor domain; each names the rule that refused.
var (
	// ErrRatio: an invigilator would be responsible for more candidates than the programme allows.
	ErrRatio = errors.New("each invigilator may be responsible for at most the programme's ratio of candidates (default 15)")
	// ErrTooFewInvigilators: a room must have at least the programme's minimum of invigilators (default 2).
	ErrTooFewInvigilators = errors.New("every room needs at least the programme's minimum of invigilators (default 2)")
	// ErrBadRules: invigilation rules that cannot be met by any plan.
	ErrBadRules = errors.New("invigilation rules must have a positive ratio, room capacity and minimum per room")
)
