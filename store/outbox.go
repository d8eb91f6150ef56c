package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Channels a notification goes by.
const (
	ChannelEmail = "email"
	ChannelSMS   = "sms"
)

// States of an outbox message.
const (
	OutboxQueued  = "queued"  // waiting for the sender (again, after a failure)
	OutboxSending = "sending" // a sender holds it until lease_until
	OutboxSent    = "sent"    // the mail server or gateway took it
	OutboxRefused = "refused" // the server refused the address for good
	OutboxFailed  = "failed"  // retried until the sender gave up
	OutboxInvalid = "invalid" // the address is not one; never sent
)

// OutboxMessage is one message to one person: written in the transaction
// of the event that causes it, sent later by the sender.
type OutboxMessage struct {
	ID        int64     `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	UserID    int64     `json:"user_id"`
	Channel   string    `json:"channel"`
	// Address is where it goes, as the account had it when queued.
	Address string `json:"address"`
	// Kind names the message: its texts are "mail.<kind>.*" in the
	// dictionary.
	Kind string `json:"kind"`
	// Data holds the message's particulars (JSON): names, times, rooms,
	// and what its one-time login links open.
	Data string `json:"-"`
	// Dedupe, when set, makes the message go at most once (reminders).
	Dedupe *string `json:"-"`
	// Batch groups a bulk sending for its progress figure.
	Batch      string     `json:"batch"`
	State      string     `json:"state"`
	Attempts   int        `json:"attempts"`
	NextAt     time.Time  `json:"next_at"`
	LeaseUntil *time.Time `json:"-"`
	SentAt     *time.Time `json:"sent_at"`
	// Error is the last failure or the server's refusal, for the admin.
	Error string `json:"error"`
	// MessageID is the mail's Message-ID, the same at every try.
	MessageID string `json:"message_id"`
}

// TableName is the outbox table.
func (OutboxMessage) TableName() string { return "outbox" }

// LoginLink is a one-time login link: only its token's SHA-256 is kept.
type LoginLink struct {
	ID        int64
	TokenHash string
	UserID    int64
	// Target is the page the link opens after logging in.
	Target    string
	OutboxID  *int64
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// Notice is a message a domain queues for a person.
type Notice struct {
	UserID int64
	Kind   string
	Data   NoticeData
	// Dedupe, when set, keeps a second notice with the same key from being
	// queued (e.g. "remind-day:<session>:<user>").
	Dedupe string
	Batch  string
}

// Enqueue writes notices to the outbox inside tx, the transaction of the
// event that causes them: a rolled-back event leaves no message. Each goes
// by every channel the person has (email, mobile); a person with neither
// gets none. An address that is not one is kept as invalid, for the admin
// to see. It returns how many messages were queued.
func Enqueue(ctx context.Context, tx *gorm.DB, now time.Time, notices ...Notice) (int, error) {
	if len(notices) == 0 {
		return 0, nil
	}
	now = now.UTC() // SQLite compares times as text
	ids := make([]int64, len(notices))
	for i, n := range notices {
		ids[i] = n.UserID
	}
	var users []User
	if err := tx.WithContext(ctx).Select("id, email, mobile").Where("id IN ?", ids).Find(&users).Error; err != nil {
		return 0, err
	}
	byID := map[int64]User{}
	for _, u := range users {
		byID[u.ID] = u
	}
	var rows []OutboxMessage
	for _, n := range notices {
		data, err := json.Marshal(n.Data)
		if err != nil {
			return 0, fmt.Errorf("notice %s: %w", n.Kind, err)
		}
		u := byID[n.UserID]
		for _, ch := range []struct{ channel, address string }{{ChannelEmail, u.Email}, {ChannelSMS, u.Mobile}} {
			if ch.address == "" {
				continue
			}
			m := OutboxMessage{CreatedAt: now, UserID: n.UserID, Channel: ch.channel, Address: ch.address, Kind: n.Kind,
				Data: string(data), Batch: n.Batch, State: OutboxQueued, NextAt: now, MessageID: newMessageID()}
			if n.Dedupe != "" {
				key := n.Dedupe + ":" + ch.channel
				m.Dedupe = &key
			}
			if !ValidAddress(ch.channel, ch.address) {
				m.State, m.Error = OutboxInvalid, "not a valid address"
			}
			rows = append(rows, m)
		}
	}
	if len(rows) == 0 {
		return 0, nil
	}
	res := tx.WithContext(ctx).Clauses(clause.OnConflict{Columns: []clause.Column{{Name: "dedupe"}}, DoNothing: true}).CreateInBatches(rows, 500)
	return int(res.RowsAffected), res.Error
}

// ValidAddress says whether an address can be sent to by its channel: a
// bare email address, or a mobile number of 6 to 15 digits with an
// optional leading +.
func ValidAddress(channel, address string) bool {
	switch channel {
	case ChannelEmail:
		a, err := mail.ParseAddress(address)
		return err == nil && a.Address == address && a.Name == "" && strings.Count(address, "@") == 1
	case ChannelSMS:
		digits := strings.TrimPrefix(address, "+")
		if len(digits) < 6 || len(digits) > 15 {
			return false
		}
		for _, r := range digits {
			if r < '0' || r > '9' {
				return false
			}
		}
		return true
	}
	return false
}

// NoticeData is what a notice carries: the parameters of its texts
// ("mail.<kind>.*" in the dictionary; the sender adds name and login_url),
// the one-time login links made when it is sent (each fills the parameter
// it names with its URL) and the calendar event attached to a mail.
type NoticeData struct {
	Params map[string]string `json:"params"`
	Links  []NoticeLink      `json:"links,omitempty"`
	Event  *NoticeEvent      `json:"event,omitempty"`
}

// NoticeLink asks for a one-time login link to Target (a path of the
// site, e.g. "/lobby?attempt=12"), valid until ExpiresAt.
type NoticeLink struct {
	Param     string    `json:"param"`
	Target    string    `json:"target"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NoticeEvent is a calendar event (.ics) attached to a mail.
type NoticeEvent struct {
	UID      string    `json:"uid"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Summary  string    `json:"summary"`
	Location string    `json:"location"`
}

// ExamZone is the time zone notices give times in (the programme's:
// China Standard Time).
var ExamZone = time.FixedZone("UTC+8", 8*3600)

// NoticeTime formats a time for a notice, in ExamZone.
func NoticeTime(t time.Time) string { return t.In(ExamZone).Format("2006-01-02 15:04") + " (UTC+8)" }

// NoticeMark records that a set of notices (e.g. a session's day
// reminders) was queued, so it is queued once whichever node gets there.
type NoticeMark struct {
	Mark string `gorm:"primaryKey"`
	At   time.Time
}

// Mark claims a mark inside tx: true if this transaction made it, false
// if it was made before.
func Mark(ctx context.Context, tx *gorm.DB, mark string, now time.Time) (bool, error) {
	res := tx.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&NoticeMark{Mark: mark, At: now})
	return res.RowsAffected == 1, res.Error
}

func newMessageID() string { return rand.Text() + "@examhall" }

// LinkHash is the stored form of a one-time login link's token.
func LinkHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// MessagesOf lists the outbox messages of a person, newest first.
func (db *DB) MessagesOf(ctx context.Context, userID int64) ([]OutboxMessage, error) {
	var ms []OutboxMessage
	err := db.WithContext(ctx).Where("user_id = ?", userID).Order("id DESC").Limit(200).Find(&ms).Error
	return ms, err
}
