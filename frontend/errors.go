package frontend

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// Errors of the web layer: the same one type as every domain's.
var (
	ErrBadCredentials     = store.NewError("web", store.Unauthenticated, "bad_credentials", "bad credentials")
	ErrMissingCredentials = store.NewError("web", store.Invalid, "missing_credentials", "missing credentials")
	ErrAccountDisabled    = store.NewError("web", store.Forbidden, "account_disabled", "account disabled")
	ErrCSRF               = store.NewError("web", store.Forbidden, "csrf", "missing or wrong CSRF token")
	ErrCrossOrigin        = store.NewError("web", store.Forbidden, "cross_origin", "cross-origin request")
	ErrUnauthenticated    = store.NewError("web", store.Unauthenticated, "unauthenticated", "not logged in")
	ErrSessionExpired     = store.NewError("web", store.Unauthenticated, "session_expired", "session expired or unknown")
	ErrForbidden          = store.NewError("web", store.Forbidden, "forbidden", "role not allowed")
	ErrBadRequest         = store.NewError("web", store.Invalid, "bad_request", "malformed request")
	ErrTooLarge           = store.NewError("web", store.TooLarge, "too_large", "request too large")
	ErrNotWebSocket       = store.NewError("web", store.Invalid, "not_websocket", "not a websocket handshake")
	ErrUnknownType        = store.NewError("web", store.Invalid, "unknown_type", "unknown message type")
)

// RateLimitedError says a limit was hit and when to try again.
type RateLimitedError struct{ RetryAfter time.Duration }

func (e *RateLimitedError) Error() string { return "rate limited" }

// APIError is what a client is told about an error: a status, a stable code
// and a message in both languages. Internal detail never reaches it.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message Text   `json:"message"`
	// Detail is a domain error's particulars (which rule, what numbers),
	// in English, when it has any.
	Detail string `json:"detail,omitempty"`
}

// kindStatus is the HTTP status of each kind of domain error.
var kindStatus = map[store.Kind]int{
	store.Invalid:       http.StatusBadRequest,
	store.Forbidden:     http.StatusForbidden,
	store.NotFound:      http.StatusNotFound,
	store.Conflict:      http.StatusConflict,
	store.Gone:          http.StatusGone,
	store.Unprocessable: http.StatusUnprocessableEntity,
	store.TooLarge:      http.StatusRequestEntityTooLarge,
	store.Unsupported:   http.StatusUnsupportedMediaType,
	store.TooMany:       http.StatusTooManyRequests,
	store.Unavailable:   http.StatusServiceUnavailable,
	store.Internal:      http.StatusInternalServerError,
	// Unauthenticated is 401: the pages send the user to the login.
	store.Unauthenticated: http.StatusUnauthorized,
}

// publicError maps an error to what the client may see. This is the one place
// where errors become status codes.
func publicError(err error) APIError {
	var rl *RateLimitedError
	var tl *TooLargeError
	var de *store.Error
	code, status := "internal", http.StatusInternalServerError
	switch {
	case errors.As(err, &de):
		// Domain errors carry their kind and code, and their text is
		// meant for clients.
		pe := APIError{kindStatus[de.Kind], de.Code(), T("error." + de.Code()), ""}
		if detail := err.Error(); detail != de.Error() {
			pe.Detail = detail
		}
		return pe
	case errors.As(err, &tl):
		return APIError{http.StatusRequestEntityTooLarge, "too_large", T("error.too_large"), tl.Error()}
	case errors.As(err, &rl):
		if secs := int(math.Ceil(rl.RetryAfter.Seconds())); secs < 60 {
			return APIError{http.StatusTooManyRequests, "too_many_attempts", T("error.too_many_attempts.seconds", "seconds", strconv.Itoa(max(secs, 1))), ""}
		}
		mins := int(math.Ceil(rl.RetryAfter.Minutes()))
		return APIError{http.StatusTooManyRequests, "too_many_attempts", T("error.too_many_attempts", "minutes", strconv.Itoa(max(mins, 1))), ""}
	case errors.Is(err, store.ErrConflict):
		code, status = "conflict", http.StatusConflict
	case errors.Is(err, store.ErrNotFound), errors.Is(err, gorm.ErrRecordNotFound):
		code, status = "not_found", http.StatusNotFound
	}
	return APIError{status, code, T("error." + code), ""}
}

// writeError answers an API request with {"error": {"code", "message"}}.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	pe := publicError(err)
	if pe.Status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if rl := (*RateLimitedError)(nil); errors.As(err, &rl) {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(rl.RetryAfter.Seconds()))))
	}
	reply := map[string]any{"error": pe}
	// An error that lists its problems (an import's invalid lines) sends them.
	var lined interface{ LineErrors() any }
	if errors.As(err, &lined) {
		reply["lines"] = lined.LineErrors()
	}
	// So does a refused change of rules (which rules, and why).
	var ruled interface{ RuleErrors() any }
	if errors.As(err, &ruled) {
		reply["rules"] = ruled.RuleErrors()
	}
	writeJSON(w, pe.Status, reply)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// WriteJSON answers with v as JSON, for handlers mounted by other packages.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	writeJSON(w, status, v)
	return nil
}
