package store

import "errors"

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
