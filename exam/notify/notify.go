// Package notify sends what the outbox holds.
//
// A domain queues a message with store.Enqueue inside the transaction of the
// event that causes it (a seat assigned, a result published), so a
// rolled-back event leaves no message. Each row is one message to one person
// by one channel: email or SMS.
//
// A Sender runs on every node. Each tick it looks for due rows (queued with
// next_at passed, or sending with an expired lease: a sender that died in
// the middle of a try) and claims them one at a time with a conditional
// UPDATE that sets the state to sending, counts the try and takes a lease.
// Only the node whose UPDATE changed the row sends it, so several nodes can
// share one database. Sending is paced by a token bucket (Config.Rate).
//
// To send a row the Sender reads its NoticeData, adds the person's name and
// the login page's URL, makes the one-time login links it asks for (only
// the SHA-256 of each token is kept, in login_links), renders the texts from
// the dictionary ("mail.<kind>.*", Chinese first, English beside) and hands
// the message to the Mailer or the SMS gateway. The outcome is written in
// the same step:
//
//   - accepted: sent, with sent_at; it is never sent again.
//   - refused for good (an SMTP 5xx, a gateway's 4xx): refused, with the
//     server's text in error, for the admin to see.
//   - anything else (connection refused, timeout, 4xx): queued again after
//     a backoff that doubles from 10 s up to 1 h; failed after 12 tries.
//
// The links made for a try that did not succeed are deleted, so only the
// links of a delivered message can be redeemed; the next try makes new ones.
//
// A message is sent at most once, except in one window: the server has
// accepted the message, but the Sender stops (a crash, a lost database)
// before it marks the row sent. The lease then expires and another try sends
// it again. Every try of a row carries the same Message-ID, so mail systems
// that deduplicate on it show the person one message; an SMS may arrive
// twice.
//
// The web layer uses Redeem to log a person in through a link, Resend for
// an admin's "send again" and Progress for a batch's figures.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// Resend puts a message that was sent, refused or failed back in the queue
// with its tries reset: an admin's "send again". It goes to the person's
// current address for its channel (corrected after a refusal, say); an
// address that is not one makes the message invalid. A message that was
// sent gets a new Message-ID, so the mail is not taken for a copy of the
// first one. Links of earlier tries stay valid until they expire.
// It is audited as the admin's act, in the same transaction.
func Resend(ctx context.Context, db *store.DB, id, adminID int64, now time.Time) error {
	now = now.UTC().Truncate(time.Microsecond)
	var m store.OutboxMessage
	if err := db.WithContext(ctx).Where("id = ?", id).Take(&m).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return fmt.Errorf("%w: outbox message %d", ErrNoMessage, id)
		}
		return err
	}
	var addresses []struct{ Email, Mobile string }
	if err := db.WithContext(ctx).Table("users").Select("email, mobile").Where("id = ?", m.UserID).Scan(&addresses).Error; err != nil {
		return err
	}
	address := m.Address
	if len(addresses) == 1 {
		current := addresses[0].Email
		if m.Channel == store.ChannelSMS {
			current = addresses[0].Mobile
		}
		if current != "" {
			address = current
		}
	}
	set := map[string]any{"state": store.OutboxQueued, "attempts": 0, "next_at": now, "lease_until": nil,
		"sent_at": nil, "error": "", "address": address}
	if !store.ValidAddress(m.Channel, address) {
		set["state"], set["error"] = store.OutboxInvalid, "not a valid address"
	}
	if m.State == store.OutboxSent {
		set["message_id"] = newMessageID()
	}
	detail, _ := json.Marshal(map[string]string{"was": m.State, "address": address})
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&store.OutboxMessage{}).
			Where("id = ? AND state IN ?", id, []string{store.OutboxSent, store.OutboxRefused, store.OutboxFailed}).Updates(set)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("%w: outbox message %d is %s", ErrNotResendable, id, m.State)
		}
		return tx.Create(&store.AuditEvent{At: now, ActorID: &adminID, Action: "message_resent", ObjectType: "outbox",
			ObjectID: strconv.FormatInt(id, 10), Detail: string(detail)}).Error
	})
}

// Progress counts a batch's messages by state.
func Progress(ctx context.Context, db *store.DB, batch string) (map[string]int, error) {
	var rows []struct {
		State string
		N     int
	}
	err := db.WithContext(ctx).Model(&store.OutboxMessage{}).Select("state, COUNT(*) AS n").
		Where("batch = ?", batch).Group("state").Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out, nil
}

// Bounce records that a mail the server took came back undelivered (a
// bounce the mail provider reports later): the message becomes refused
// with the reason, for the admin to see and send again to a corrected
// address. messageID is the mail's Message-ID, with or without its angle
// brackets.
func Bounce(ctx context.Context, db *store.DB, messageID, reason string, now time.Time) error {
	messageID = strings.Trim(strings.TrimSpace(messageID), "<>")
	reason = strings.TrimSpace(reason)
	if len(reason) > 500 {
		reason = reason[:500]
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var m store.OutboxMessage
		if err := tx.Where("message_id = ? AND channel = ?", messageID, store.ChannelEmail).Take(&m).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return fmt.Errorf("%w: Message-ID %q", ErrNoMessage, messageID)
			}
			return err
		}
		err := tx.Model(&m).Updates(map[string]any{"state": store.OutboxRefused, "error": "bounced: " + reason}).Error
		if err != nil {
			return err
		}
		detail, _ := json.Marshal(map[string]string{"address": m.Address, "reason": reason})
		return tx.Create(&store.AuditEvent{At: now.UTC(), Action: "message_bounced", ObjectType: "outbox",
			ObjectID: strconv.FormatInt(m.ID, 10), Detail: string(detail)}).Error
	})
}
