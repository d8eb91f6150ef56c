package media

import "net/http"

// Error is a media error a client may see: a stable code and an HTTP status.
type Error struct {
	code   string
	status int
	text   string
}

func (e *Error) Error() string { return "media: " + e.text }

// Code is the stable code sent to clients.
func (e *Error) Code() string { return e.code }

// Status is the HTTP status that fits the error.
func (e *Error) Status() int { return e.status }

// Errors of the media service.
var (
	ErrBadSDP       = &Error{"bad_sdp", http.StatusBadRequest, "the offer is not a valid SDP offer"}
	ErrTooManyTrack = &Error{"too_many_tracks", http.StatusBadRequest, "a PC sends at most one camera and one microphone; a phone one camera and no microphone"}
	ErrNoPeer       = &Error{"no_peer", http.StatusConflict, "no media connection for this device; send an offer first"}
	ErrBadCandidate = &Error{"bad_candidate", http.StatusBadRequest, "the ICE candidate is not valid"}
	ErrProbeBusy    = &Error{"probe_busy", http.StatusTooManyRequests, "a test connection of this user is still running; wait 15 s"}
	ErrClosed       = &Error{"media_closed", http.StatusServiceUnavailable, "the media service is shutting down"}
)
