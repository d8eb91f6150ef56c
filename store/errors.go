package store

import (
	"errors"
	"slices"
	"sync"
)

// Sentinel errors of the store. Callers wrap them with %w; the HTTP layer maps
// them to status codes in one place.
var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means a unique constraint refused the write.
	ErrConflict = errors.New("store: conflict")
	// ErrUnknownSchema means the database holds migrations this binary does not know:
	// it was written by a newer examhall, and running on it could corrupt it.
	ErrUnknownSchema = errors.New("store: database schema is newer than this binary")
	// ErrBadURL means a database or Redis URL could not be understood.
	ErrBadURL = errors.New("store: bad URL")
)

// ErrBusClosed means the bus was closed.
var ErrBusClosed = errors.New("store: bus closed")

// Kind says what sort of refusal an Error is; the web layer maps each kind
// to its HTTP status in one place (frontend/errors.go).
type Kind int

// Kinds of refusal.
const (
	Invalid         Kind = iota + 1 // the request is malformed or incomplete
	Forbidden                       // the caller may not do this
	NotFound                        // no such object (for this caller)
	Conflict                        // the object's state does not allow it now
	Gone                            // it existed and has expired
	Unprocessable                   // well formed, but a rule refuses it
	TooLarge                        // over a size limit
	Unsupported                     // a file of a type not taken
	TooMany                         // a limit of concurrent or repeated use
	Unavailable                     // try again later
	Internal                        // a fault of the server's
	Unauthenticated                 // the caller must log in (again)
)

// Error is the one error type a client may see, for every domain: a kind,
// a stable code (its message in the dictionary is "error."+code, naming the
// rule that refused where there is one) and a text for logs and details.
type Error struct {
	Kind   Kind
	domain string
	code   string
	text   string
}

// NewError makes a domain's sentinel error, and lists it for AllErrors.
func NewError(domain string, kind Kind, code, text string) *Error {
	e := &Error{Kind: kind, domain: domain, code: code, text: text}
	registry.Lock()
	defer registry.Unlock()
	registry.all = append(registry.all, e)
	return e
}

var registry struct {
	sync.Mutex
	all []*Error
}

// AllErrors lists every error made with NewError by the packages linked
// in, so a test can check each has its message in the dictionary.
func AllErrors() []*Error {
	registry.Lock()
	defer registry.Unlock()
	return slices.Clone(registry.all)
}

func (e *Error) Error() string { return e.domain + ": " + e.text }

// Code is the stable code sent to clients.
func (e *Error) Code() string { return e.code }

// Text is the error's particulars without the domain's prefix.
func (e *Error) Text() string { return e.text }
