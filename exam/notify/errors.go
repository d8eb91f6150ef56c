package notify

import (
	"errors"

	"github.com/examhall/examhall/store"
)

// ErrRefused means the mail server or the SMS gateway refused the message
// for good (an SMTP 5xx, a gateway's 4xx): trying again will not help.
// Every other error of a Mailer or an SMS is taken as temporary.
var ErrRefused = errors.New("notify: refused")

// ErrUnknownKind means the dictionary has no texts for a message's kind.
var ErrUnknownKind = errors.New("notify: no texts for this kind of message")

// Errors the web layer shows.
var (
	ErrLinkUsed      = store.NewError("notify", store.Gone, "link_used", "the login link was used already")
	ErrLinkExpired   = store.NewError("notify", store.Gone, "link_expired", "the login link has expired")
	ErrLinkUnknown   = store.NewError("notify", store.NotFound, "link_unknown", "no such login link")
	ErrNoMessage     = store.NewError("notify", store.NotFound, "notice_unknown", "no such message in the outbox")
	ErrNotResendable = store.NewError("notify", store.Conflict, "notice_not_resendable", "only a sent, refused or failed message can be sent again")
)
