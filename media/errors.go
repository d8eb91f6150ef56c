package media

import "github.com/examhall/examhall/store"

// Errors of the media service.
var (
	ErrBadSDP       = store.NewError("media", store.Invalid, "bad_sdp", "the offer is not a valid SDP offer")
	ErrTooManyTrack = store.NewError("media", store.Invalid, "too_many_tracks", "a PC sends at most one camera and one microphone; a phone one camera and no microphone")
	ErrNoPeer       = store.NewError("media", store.Conflict, "no_peer", "no media connection for this device; send an offer first")
	ErrBadCandidate = store.NewError("media", store.Invalid, "bad_candidate", "the ICE candidate is not valid")
	ErrProbeBusy    = store.NewError("media", store.TooMany, "probe_busy", "a test connection of this user is still running; wait 15 s")
	ErrClosed       = store.NewError("media", store.Unavailable, "media_closed", "the media service is shutting down")
)
