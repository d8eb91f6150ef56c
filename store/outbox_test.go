package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// A notice is written in the transaction of its event: an event that
// fails leaves no message. A person gets it by each channel they have, an
// address that is not one is kept as invalid and never queued, and a
// notice with a dedupe key is queued once.
func TestOutboxGoesWithItsEvent(t *testing.T) {
	storetest.ForEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		user := func(name, email, mobile string) int64 {
			u := &store.User{Role: store.RoleCandidate, Username: name, PasswordHash: "x", DisplayName: name, Email: email, Mobile: mobile, CreatedAt: now}
			if err := db.Create(u).Error; err != nil {
				t.Fatal(err)
			}
			return u.ID
		}
		both, none, bad := user("both", "both@example.test", "+8613800138000"), user("none", "", ""), user("bad", "not an address", "12")
		notice := func(id int64, dedupe string) store.Notice {
			return store.Notice{UserID: id, Kind: "fee_confirmed", Dedupe: dedupe, Data: store.NoticeData{Params: map[string]string{"amount": "¥1.00"}}}
		}
		count := func() (rows int64) {
			db.Model(&store.OutboxMessage{}).Count(&rows)
			return rows
		}

		failed := errors.New("the event failed")
		err := db.Transaction(func(tx *gorm.DB) error {
			if n, err := store.Enqueue(ctx, tx, now, notice(both, "")); err != nil || n != 2 {
				t.Fatalf("queued %d, %v", n, err)
			}
			return failed
		})
		if !errors.Is(err, failed) || count() != 0 {
			t.Fatalf("a failed event left %d messages (%v)", count(), err)
		}

		err = db.Transaction(func(tx *gorm.DB) error {
			_, err := store.Enqueue(ctx, tx, now, notice(both, ""), notice(none, ""), notice(bad, ""), notice(both, "once"), notice(both, "once"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var rows []store.OutboxMessage
		db.Order("id").Find(&rows)
		var states []string
		for _, r := range rows {
			states = append(states, r.Channel+":"+r.State)
		}
		// both: email and sms, twice (once without a key, once with);
		// none: nothing; bad: both channels invalid.
		want := "[email:queued sms:queued email:invalid sms:invalid email:queued sms:queued]"
		if got := fmt.Sprint(states); got != want {
			t.Fatalf("rows %s, want %s", got, want)
		}
		if rows[0].MessageID == rows[1].MessageID || rows[0].Address != "both@example.test" || rows[1].Address != "+8613800138000" {
			t.Fatalf("rows %+v", rows[:2])
		}
	})
}
