package notify

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"gorm.io/gorm"

	"github.com/examhall/examhall/store"
)

// Config is what a Sender needs.
type Config struct {
	DB *store.DB
	// Mail sends the emails; nil: none is sent, email messages stay queued.
	Mail Mailer
	// SMS sends the text messages; nil: LogSMS.
	SMS SMS
	// BaseURL is the site's address, e.g. "https://exam.example.org": the
	// links of the messages start with it.
	BaseURL string
	// Rate is how many messages a second this Sender sends at most
	// (default 10).
	Rate float64
	// Poll is how often the outbox is looked at (default 1 s).
	Poll time.Duration
	// LeaseFor is how long a try may take before another sender may take
	// the message over (default 2 min).
	LeaseFor time.Duration
	// Backoff is the wait after a first failed try, doubling at each
	// further one up to an hour (default 10 s).
	Backoff time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
	// Metrics, when set, receives the Sender's counters.
	Metrics prometheus.Registerer
}

// maxTries is how many tries a message gets before it fails for good.
const maxTries = 12

// maxBackoff caps the wait between tries.
const maxBackoff = time.Hour

// batchSize is how many due messages one look at the outbox reads.
const batchSize = 50

// Sender sends the outbox's due messages; see the package comment.
type Sender struct {
	cfg      Config
	log      *slog.Logger
	limiter  *rate.Limiter
	channels []string

	sent   *prometheus.CounterVec
	failed *prometheus.CounterVec
	queue  prometheus.Gauge
}

// New returns a Sender; Run starts it.
func New(cfg Config) *Sender {
	if cfg.SMS == nil {
		cfg.SMS = LogSMS{Logger: cfg.Logger}
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 10
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.LeaseFor <= 0 {
		cfg.LeaseFor = 2 * time.Minute
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	s := &Sender{cfg: cfg, log: cfg.Logger.With("component", "notify"),
		limiter:  rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate))),
		channels: []string{store.ChannelSMS},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "examhall_notify_sent_total",
			Help: "Messages the mail server or SMS gateway accepted."}, []string{"channel"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "examhall_notify_failed_total",
			Help: "Tries that failed: refused for good, or temporary (tried again later)."}, []string{"channel", "reason"}),
		queue: prometheus.NewGauge(prometheus.GaugeOpts{Name: "examhall_notify_queue",
			Help: "Messages queued in the outbox, due or waiting for a retry."}),
	}
	if cfg.Mail != nil {
		s.channels = append(s.channels, store.ChannelEmail)
	}
	return s
}

// now is the time in the form the database keeps (UTC, microseconds), so a
// time written can be compared for equality with the one read back.
func (s *Sender) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// Run sends due messages until ctx ends, then returns nil. It fails only
// when its metrics cannot be registered; database errors are logged and
// the next tick tries again.
func (s *Sender) Run(ctx context.Context) error {
	if r := s.cfg.Metrics; r != nil {
		for _, c := range []prometheus.Collector{s.sent, s.failed, s.queue} {
			if err := r.Register(c); err != nil {
				return fmt.Errorf("notify: metrics: %w", err)
			}
		}
	}
	if s.cfg.Mail == nil {
		s.log.Warn("no mail server configured: email messages stay queued")
	}
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		more, err := s.sendDue(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Error("outbox not read", "err", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// sendDue claims and sends the due messages of one look at the outbox. more
// says a full batch was read, so more may be due.
func (s *Sender) sendDue(ctx context.Context) (more bool, err error) {
	var queued int64
	if err := s.cfg.DB.WithContext(ctx).Model(&store.OutboxMessage{}).Where("state = ?", store.OutboxQueued).Count(&queued).Error; err != nil {
		return false, err
	}
	s.queue.Set(float64(queued))
	now := s.now()
	var due []store.OutboxMessage
	err = s.cfg.DB.WithContext(ctx).
		Where("channel IN ? AND ((state = ? AND next_at <= ?) OR (state = ? AND lease_until < ?))",
			s.channels, store.OutboxQueued, now, store.OutboxSending, now).
		Select("id, state").Order("next_at, id").Limit(batchSize).Find(&due).Error
	if err != nil {
		return false, err
	}
	for i := range due {
		if err := s.limiter.Wait(ctx); err != nil {
			return false, nil // ctx ended
		}
		m, err := s.claim(ctx, due[i].ID, due[i].State)
		if err != nil {
			return false, err
		}
		if m != nil {
			s.send(ctx, m)
		}
	}
	return len(due) == batchSize, nil
}

// claim takes a due message for this sender with a conditional UPDATE
// that only one of several senders can win, counting the try and setting
// the lease. It returns the message as it is now, or nil when another
// sender won.
func (s *Sender) claim(ctx context.Context, id int64, state string) (*store.OutboxMessage, error) {
	now := s.now()
	lease := now.Add(s.cfg.LeaseFor)
	q := s.cfg.DB.WithContext(ctx).Model(&store.OutboxMessage{}).Where("id = ? AND state = ?", id, state)
	if state == store.OutboxQueued {
		q = q.Where("next_at <= ?", now)
	} else {
		q = q.Where("lease_until < ?", now)
	}
	res := q.Updates(map[string]any{"state": store.OutboxSending, "lease_until": lease, "attempts": gorm.Expr("attempts + 1")})
	if res.Error != nil || res.RowsAffected != 1 {
		return nil, res.Error
	}
	var m store.OutboxMessage
	if err := s.cfg.DB.WithContext(ctx).Where("id = ?", id).Take(&m).Error; err != nil {
		return nil, err // the lease ends and the message goes later
	}
	// The lease exactly as written, for finish to compare.
	m.LeaseUntil = &lease
	return &m, nil
}

// send makes one try of a claimed message and records its outcome.
func (s *Sender) send(ctx context.Context, m *store.OutboxMessage) {
	log := s.log.With("outbox", m.ID, "user", m.UserID, "channel", m.Channel, "kind", m.Kind, "try", m.Attempts)
	// The outcome is written even when ctx ends during the try.
	done, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if m.Attempts > maxTries {
		// Taken over from senders that stopped during their tries.
		s.finish(done, log, m, map[string]any{"state": store.OutboxFailed, "lease_until": nil,
			"error": "the sender stopped during each of its tries"})
		return
	}
	var data store.NoticeData
	if err := json.Unmarshal([]byte(m.Data), &data); err != nil {
		s.giveUp(done, log, m, fmt.Errorf("data: %w", err))
		return
	}
	params := map[string]string{}
	for k, v := range data.Params {
		params[k] = v
	}
	var names []string
	if err := s.cfg.DB.WithContext(ctx).Table("users").Where("id = ?", m.UserID).Pluck("display_name", &names).Error; err != nil {
		s.retry(done, log, m, nil, err)
		return
	}
	if len(names) == 1 {
		params["name"] = names[0]
	}
	params["login_url"] = s.cfg.BaseURL + "/login"
	params["site"] = s.cfg.BaseURL
	urls, links, err := makeLinks(ctx, s.cfg.DB, m, data.Links, s.cfg.BaseURL, s.now())
	if err != nil {
		s.retry(done, log, m, links, err)
		return
	}
	for k, v := range urls {
		params[k] = v
	}
	subject, text, html, sms, err := Render(m.Kind, params)
	if err == nil && m.Channel == store.ChannelSMS && sms == "" {
		err = fmt.Errorf("%w: %q has no SMS text", ErrUnknownKind, m.Kind)
	}
	if err != nil {
		s.deleteLinks(done, log, links)
		s.giveUp(done, log, m, err)
		return
	}

	err = s.deliver(ctx, m, data, Mail{To: m.Address, Subject: subject, Text: text, HTML: html, MessageID: m.MessageID}, sms)
	switch {
	case err == nil:
		s.sent.WithLabelValues(m.Channel).Inc()
		// Not conditional on the lease: the server has the message, so it
		// is sent whatever another sender did meanwhile.
		res := s.cfg.DB.WithContext(done).Model(&store.OutboxMessage{}).Where("id = ?", m.ID).
			Updates(map[string]any{"state": store.OutboxSent, "sent_at": s.now(), "lease_until": nil, "error": ""})
		if res.Error != nil {
			log.Error("sent, but not marked sent: it may go again once its lease ends", "err", res.Error)
			return
		}
		log.Info("sent")
	case errors.Is(err, ErrRefused):
		s.failed.WithLabelValues(m.Channel, "refused").Inc()
		s.deleteLinks(done, log, links)
		log.Warn("refused", "err", err)
		s.finish(done, log, m, map[string]any{"state": store.OutboxRefused, "lease_until": nil, "error": clip(err.Error())})
	default:
		s.failed.WithLabelValues(m.Channel, "temporary").Inc()
		s.retry(done, log, m, links, err)
	}
}

// deliver hands the message to its channel: the mail, or the SMS text.
func (s *Sender) deliver(ctx context.Context, m *store.OutboxMessage, data store.NoticeData, mail Mail, sms string) error {
	// The try must end well before the lease, so that no other sender
	// takes the message over while it is on its way.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LeaseFor/2)
	defer cancel()
	switch m.Channel {
	case store.ChannelEmail:
		if data.Event != nil {
			mail.ICS = ICS(*data.Event, s.cfg.Now())
		}
		return s.cfg.Mail.Send(ctx, mail)
	case store.ChannelSMS:
		return s.cfg.SMS.Send(ctx, m.Address, sms)
	}
	return fmt.Errorf("%w: unknown channel %q", ErrRefused, m.Channel)
}

// retry records a temporary failure: the message waits for its next try,
// or fails after the last one. The try's links are deleted.
func (s *Sender) retry(ctx context.Context, log *slog.Logger, m *store.OutboxMessage, links []int64, cause error) {
	s.deleteLinks(ctx, log, links)
	if m.Attempts >= maxTries {
		log.Warn("failed for good", "err", cause)
		s.finish(ctx, log, m, map[string]any{"state": store.OutboxFailed, "lease_until": nil, "error": clip(cause.Error())})
		return
	}
	wait := s.cfg.Backoff << (m.Attempts - 1)
	if wait > maxBackoff || wait <= 0 {
		wait = maxBackoff
	}
	log.Info("will try again", "in", wait, "err", cause)
	s.finish(ctx, log, m, map[string]any{"state": store.OutboxQueued, "lease_until": nil,
		"next_at": s.now().Add(wait), "error": clip(cause.Error())})
}

// giveUp fails a message that no try can send (its data or its texts are
// wrong).
func (s *Sender) giveUp(ctx context.Context, log *slog.Logger, m *store.OutboxMessage, cause error) {
	log.Error("cannot be sent", "err", cause)
	s.finish(ctx, log, m, map[string]any{"state": store.OutboxFailed, "lease_until": nil, "error": clip(cause.Error())})
}

// finish writes a try's outcome if this sender still holds the message's
// lease: one that took too long may have been taken over, and the other
// sender's outcome stands.
func (s *Sender) finish(ctx context.Context, log *slog.Logger, m *store.OutboxMessage, set map[string]any) {
	res := s.cfg.DB.WithContext(ctx).Model(&store.OutboxMessage{}).
		Where("id = ? AND state = ? AND lease_until = ?", m.ID, store.OutboxSending, *m.LeaseUntil).Updates(set)
	switch {
	case res.Error != nil:
		log.Error("outcome not recorded: the message goes again once its lease ends", "err", res.Error)
	case res.RowsAffected != 1:
		log.Warn("outcome not recorded: another sender took the message over")
	}
}

// deleteLinks deletes the links of a try that did not succeed. Its message
// was not delivered; after a timeout at the very end of the data it may
// have been, and then its links are dead but the next try brings new ones.
func (s *Sender) deleteLinks(ctx context.Context, log *slog.Logger, ids []int64) {
	if len(ids) == 0 {
		return
	}
	if err := s.cfg.DB.WithContext(ctx).Where("id IN ?", ids).Delete(&store.LoginLink{}).Error; err != nil {
		log.Warn("links of a failed try not deleted; they expire", "err", err)
	}
}

// clip shortens an error text for the error column.
func clip(s string) string {
	const limit = 1000
	if len(s) <= limit {
		return s
	}
	for i := limit; i > 0; i-- {
		if (s[i] & 0xC0) != 0x80 {
			return s[:i] + "…"
		}
	}
	return s[:limit]
}

// newMessageID is a fresh Message-ID, like those store.Enqueue makes.
func newMessageID() string { return rand.Text() + "@examhall" }
