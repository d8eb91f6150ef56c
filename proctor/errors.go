package proctor

import (
	"errors"

	"github.com/examhall/examhall/store"
)

// Sentinel errors of the proctor domain; each names the rule that refused.
var (
	// ErrRatio: an invigilator would be responsible for more candidates than the programme allows.
	ErrRatio = store.NewError("proctor", store.Conflict, "rule_ratio", "each invigilator may be responsible for at most the programme's ratio of candidates (default 15)")
	// ErrTooFewInvigilators: a room must have at least the programme's minimum of invigilators (default 2).
	ErrTooFewInvigilators = store.NewError("proctor", store.Conflict, "rule_min_invigilators", "every room needs at least the programme's minimum of invigilators (default 2)")
	// ErrOneResponsible: every candidate has exactly one responsible invigilator, who works in their room.
	ErrOneResponsible = store.NewError("proctor", store.Conflict, "rule_one_responsible", "every candidate has exactly one responsible invigilator, an invigilator of their room")
	// ErrBadRules: invigilation rules that cannot be met by any plan.
	ErrBadRules = errors.New("invigilation rules must have a positive ratio, room capacity and minimum per room")
)

// MaxStillsPerAttempt bounds the evidence frames a page may upload for one
// attempt (a flag's start sends one; a 120-minute exam needs far fewer).
const MaxStillsPerAttempt = 500

// evidenceExt is the file type of the evidence a page may attach to each
// kind: a JPEG frame for the face kinds and "enrol" (the device check's
// frame the page compares the candidate's face with), a WAV clip for
// talking.
var evidenceExt = map[string]string{
	FaceAbsent: "jpg", FacesMultiple: "jpg", FaceOccluded: "jpg", HeadTurned: "jpg", "enrol": "jpg",
	Talking: "wav",
}

// EvidenceExt is the file type a page's evidence of kind has ("" when
// the kind takes none).
func EvidenceExt(kind string) string { return evidenceExt[kind] }

// CheckEvidence says whether b is evidence the page may attach to kind
// (a JPEG, or a WAV file for talking), and its file type.
func CheckEvidence(kind string, b []byte) (ext string, ok bool) {
	switch ext = evidenceExt[kind]; ext {
	case "wav":
		return ext, len(b) > 44 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WAVE"
	case "jpg":
		return ext, len(b) >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff
	}
	return "", false
}

// Errors of the proctor service.
var (
	ErrNoAttempt      = store.NewError("proctor", store.NotFound, "no_attempt", "no proctored attempt")
	ErrNotYours       = store.NewError("proctor", store.Forbidden, "not_your_candidate", "only the responsible invigilator, a chief invigilator of the session or an admin may do this")
	ErrTooManySignals = store.NewError("proctor", store.TooMany, "too_many_signals", "more signals than a page sends; slow down")
	ErrTooManyStills  = store.NewError("proctor", store.TooMany, "too_many_stills", "the attempt has all the evidence stills it may keep")
	ErrBadSignal      = store.NewError("proctor", store.Invalid, "bad_signal", "unknown signal kind or phase")
	ErrBadAction      = store.NewError("proctor", store.Invalid, "bad_action", "the action is incomplete")
	ErrNoMessage      = store.NewError("proctor", store.NotFound, "no_message", "no such message for this attempt")
)
