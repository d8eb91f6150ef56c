package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-gormigrate/gormigrate/v2"
	"gorm.io/gorm"
)

// migrations are ordered and append-only: never edit one that has shipped;
// add a new one. Each is plain SQL written once for both databases, with
// {{pk}}, {{ts}} and {{bool}} standing for the types that differ, and
// {{clustered}} marking a table stored in its primary key's order (SQLite's
// WITHOUT ROWID: one B-tree to write instead of a table and an index, which
// halves the pages each answer dirties).
var migrations = []struct{ id, sql string }{
	{"0001_foundation", `
CREATE TABLE users (
	id {{pk}},
	role TEXT NOT NULL,
	username TEXT NOT NULL UNIQUE,
	password_hash TEXT NOT NULL,
	display_name TEXT NOT NULL,
	chief {{bool}} NOT NULL DEFAULT FALSE,
	disabled {{bool}} NOT NULL DEFAULT FALSE,
	created_at {{ts}} NOT NULL
);
CREATE TABLE auth_sessions (
	id {{pk}},
	token_hash TEXT NOT NULL UNIQUE,
	csrf_token TEXT NOT NULL,
	user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	ip TEXT NOT NULL DEFAULT '',
	user_agent TEXT NOT NULL DEFAULT '',
	created_at {{ts}} NOT NULL,
	expires_at {{ts}} NOT NULL
);
CREATE INDEX auth_sessions_user ON auth_sessions(user_id);
CREATE TABLE programmes (
	id {{pk}},
	code TEXT NOT NULL UNIQUE,
	name_zh TEXT NOT NULL,
	name_en TEXT NOT NULL,
	issuer TEXT NOT NULL DEFAULT '',
	rules TEXT NOT NULL,
	created_at {{ts}} NOT NULL
);
CREATE TABLE levels (
	id {{pk}},
	programme_id BIGINT NOT NULL REFERENCES programmes(id),
	code TEXT NOT NULL,
	rank INTEGER NOT NULL,
	name_zh TEXT NOT NULL,
	name_en TEXT NOT NULL,
	training_hours INTEGER NOT NULL,
	fee_cents BIGINT NOT NULL,
	components TEXT NOT NULL,
	UNIQUE (programme_id, code)
);
CREATE TABLE questions (
	id {{pk}},
	programme_id BIGINT NOT NULL REFERENCES programmes(id),
	kind TEXT NOT NULL,
	stem TEXT NOT NULL,
	options TEXT NOT NULL,
	answer TEXT NOT NULL,
	tags TEXT NOT NULL,
	difficulty INTEGER NOT NULL,
	partial_credit {{bool}} NOT NULL DEFAULT FALSE,
	explanation TEXT NOT NULL DEFAULT '',
	created_at {{ts}} NOT NULL,
	updated_at {{ts}} NOT NULL
);
CREATE INDEX questions_programme ON questions(programme_id);
CREATE TABLE exams (
	id {{pk}},
	programme_id BIGINT NOT NULL REFERENCES programmes(id),
	level_id BIGINT REFERENCES levels(id),
	code TEXT NOT NULL UNIQUE,
	kind TEXT NOT NULL,
	title_zh TEXT NOT NULL,
	title_en TEXT NOT NULL,
	duration_minutes INTEGER NOT NULL,
	pass_mark INTEGER NOT NULL,
	blueprint TEXT NOT NULL,
	policy TEXT NOT NULL DEFAULT '{}',
	created_at {{ts}} NOT NULL
);
CREATE TABLE exam_sessions (
	id {{pk}},
	exam_id BIGINT NOT NULL REFERENCES exams(id),
	code TEXT NOT NULL UNIQUE,
	title TEXT NOT NULL,
	starts_at {{ts}} NOT NULL,
	admission_ends_at {{ts}} NOT NULL,
	ends_at {{ts}} NOT NULL,
	admission_mode TEXT NOT NULL,
	created_at {{ts}} NOT NULL
);
CREATE TABLE rooms (
	id {{pk}},
	session_id BIGINT NOT NULL REFERENCES exam_sessions(id),
	code TEXT NOT NULL,
	name TEXT NOT NULL,
	UNIQUE (session_id, code)
);
CREATE TABLE room_invigilators (
	room_id BIGINT NOT NULL REFERENCES rooms(id),
	user_id BIGINT NOT NULL REFERENCES users(id),
	PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_invigilators_user ON room_invigilators(user_id);
CREATE TABLE seats (
	id {{pk}},
	session_id BIGINT NOT NULL REFERENCES exam_sessions(id),
	room_id BIGINT NOT NULL REFERENCES rooms(id),
	candidate_id BIGINT NOT NULL REFERENCES users(id),
	invigilator_id BIGINT REFERENCES users(id),
	ticket TEXT NOT NULL UNIQUE,
	seat_no INTEGER NOT NULL,
	created_at {{ts}} NOT NULL,
	UNIQUE (session_id, candidate_id)
);
CREATE INDEX seats_room ON seats(room_id);
CREATE INDEX seats_invigilator ON seats(invigilator_id);
CREATE INDEX seats_candidate ON seats(candidate_id);
CREATE TABLE audit_events (
	id {{pk}},
	at {{ts}} NOT NULL,
	actor_id BIGINT,
	action TEXT NOT NULL,
	object_type TEXT NOT NULL DEFAULT '',
	object_id TEXT NOT NULL DEFAULT '',
	ip TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_object ON audit_events(object_type, object_id);
CREATE TABLE settings (
	key TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
`},
	{"0002_attempts", `
CREATE TABLE attempts (
	id {{pk}},
	exam_id BIGINT NOT NULL REFERENCES exams(id),
	session_id BIGINT REFERENCES exam_sessions(id),
	seat_id BIGINT UNIQUE REFERENCES seats(id),
	candidate_id BIGINT NOT NULL REFERENCES users(id),
	kind TEXT NOT NULL,
	status TEXT NOT NULL,
	seed BIGINT NOT NULL,
	paper TEXT NOT NULL,
	started_at {{ts}},
	deadline {{ts}},
	ended_at {{ts}},
	end_reason TEXT NOT NULL DEFAULT '',
	credited_seconds INTEGER NOT NULL DEFAULT 0,
	score DOUBLE PRECISION,
	passed {{bool}},
	created_at {{ts}} NOT NULL
);
CREATE INDEX attempts_candidate ON attempts(candidate_id);
CREATE INDEX attempts_session ON attempts(session_id);
CREATE INDEX attempts_open ON attempts(status, deadline);
CREATE TABLE answers (
	attempt_id BIGINT NOT NULL REFERENCES attempts(id),
	question_id BIGINT NOT NULL REFERENCES questions(id),
	value TEXT NOT NULL,
	seq BIGINT NOT NULL,
	marked {{bool}} NOT NULL DEFAULT FALSE,
	mark_seq BIGINT NOT NULL DEFAULT 0,
	saved_at {{ts}} NOT NULL,
	points DOUBLE PRECISION,
	PRIMARY KEY (attempt_id, question_id)
) {{clustered}};
CREATE TABLE attempt_events (
	attempt_id BIGINT NOT NULL REFERENCES attempts(id),
	n BIGINT NOT NULL,
	at {{ts}} NOT NULL,
	kind TEXT NOT NULL,
	client_seq BIGINT NOT NULL DEFAULT 0,
	data TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash TEXT NOT NULL,
	PRIMARY KEY (attempt_id, n)
) {{clustered}};
`},
	{"0003_proctor", `
ALTER TABLE exams ADD COLUMN proctor_rules TEXT NOT NULL DEFAULT '{}';
CREATE TABLE signals (
	id {{pk}},
	attempt_id BIGINT NOT NULL REFERENCES attempts(id),
	kind TEXT NOT NULL,
	source TEXT NOT NULL,
	phase TEXT NOT NULL,
	at {{ts}} NOT NULL,
	duration_ms BIGINT NOT NULL DEFAULT 0,
	detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX signals_attempt ON signals(attempt_id, at);
CREATE TABLE flags (
	id {{pk}},
	attempt_id BIGINT NOT NULL REFERENCES attempts(id),
	kind TEXT NOT NULL,
	severity TEXT NOT NULL,
	count INTEGER NOT NULL,
	first_at {{ts}} NOT NULL,
	last_at {{ts}} NOT NULL,
	duration_ms BIGINT NOT NULL DEFAULT 0,
	reason_zh TEXT NOT NULL,
	reason_en TEXT NOT NULL,
	evidence TEXT NOT NULL,
	status TEXT NOT NULL DEFAULT 'open',
	note TEXT NOT NULL DEFAULT '',
	decided_by BIGINT REFERENCES users(id),
	decided_at {{ts}}
);
CREATE INDEX flags_attempt ON flags(attempt_id, id);
CREATE TABLE proctor_messages (
	id {{pk}},
	attempt_id BIGINT NOT NULL REFERENCES attempts(id),
	sender_id BIGINT NOT NULL REFERENCES users(id),
	kind TEXT NOT NULL,
	body TEXT NOT NULL,
	sent_at {{ts}} NOT NULL,
	acked_at {{ts}}
);
CREATE INDEX proctor_messages_attempt ON proctor_messages(attempt_id, id);
`},
	{"0004_recordings", `
CREATE TABLE recordings (
	id {{pk}},
	attempt_id BIGINT NOT NULL REFERENCES attempts(id),
	device TEXT NOT NULL,
	connection TEXT NOT NULL,
	path TEXT NOT NULL UNIQUE,
	codecs TEXT NOT NULL,
	started_at {{ts}} NOT NULL,
	ended_at {{ts}},
	size_bytes BIGINT NOT NULL DEFAULT 0,
	state TEXT NOT NULL
);
CREATE INDEX recordings_attempt ON recordings(attempt_id, device, started_at);
`},
	{"0005_phone_pairing", `
CREATE TABLE phone_pairings (
	id {{pk}},
	attempt_id BIGINT NOT NULL REFERENCES attempts(id),
	token_hash TEXT NOT NULL UNIQUE,
	created_at {{ts}} NOT NULL,
	expires_at {{ts}} NOT NULL,
	used_at {{ts}},
	device_key_hash TEXT UNIQUE,
	revoked_at {{ts}}
);
CREATE INDEX phone_pairings_attempt ON phone_pairings(attempt_id);
`},
	{"0006_reviews", `
CREATE TABLE attempt_reviews (
	attempt_id BIGINT PRIMARY KEY REFERENCES attempts(id),
	decision TEXT NOT NULL,
	reason TEXT NOT NULL DEFAULT '',
	decided_by BIGINT NOT NULL REFERENCES users(id),
	decided_at {{ts}} NOT NULL
);
`},
	{"0007_readiness", `
CREATE TABLE readiness_steps (
	attempt_id BIGINT NOT NULL REFERENCES attempts(id),
	step TEXT NOT NULL,
	done_at {{ts}} NOT NULL,
	detail TEXT NOT NULL DEFAULT '{}',
	PRIMARY KEY (attempt_id, step)
);
`},
	// A candidate's registered photo (a file under the data dir named by its
	// SHA-256), shown to the invigilator beside the identity still.
	{"0008_registered_photo", `
ALTER TABLE users ADD COLUMN photo TEXT NOT NULL DEFAULT ''
`},
	{"0009_certificates", `
CREATE TABLE affiliations (
	user_id BIGINT PRIMARY KEY REFERENCES users(id),
	organisation TEXT NOT NULL
);
CREATE TABLE registrations (
	id {{pk}},
	candidate_id BIGINT NOT NULL REFERENCES users(id),
	level_id BIGINT NOT NULL REFERENCES levels(id),
	name TEXT NOT NULL,
	id_number TEXT NOT NULL,
	education TEXT NOT NULL,
	training_hours INTEGER NOT NULL,
	organisation TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	created_by BIGINT REFERENCES users(id),
	created_at {{ts}} NOT NULL
);
CREATE INDEX registrations_candidate ON registrations(candidate_id);
CREATE INDEX registrations_id_number ON registrations(id_number);
CREATE TABLE fees (
	id {{pk}},
	registration_id BIGINT NOT NULL REFERENCES registrations(id),
	item TEXT NOT NULL,
	component TEXT NOT NULL DEFAULT '',
	amount_cents BIGINT NOT NULL,
	created_at {{ts}} NOT NULL,
	paid_at {{ts}},
	method TEXT NOT NULL DEFAULT '',
	reference TEXT NOT NULL DEFAULT '',
	paid_by BIGINT REFERENCES users(id)
);
CREATE INDEX fees_registration ON fees(registration_id);
CREATE TABLE sittings (
	id {{pk}},
	registration_id BIGINT NOT NULL REFERENCES registrations(id),
	component TEXT NOT NULL,
	n INTEGER NOT NULL,
	fee_id BIGINT REFERENCES fees(id),
	seat_id BIGINT UNIQUE REFERENCES seats(id),
	opened_at {{ts}},
	file_name TEXT NOT NULL DEFAULT '',
	file_type TEXT NOT NULL DEFAULT '',
	file_size BIGINT NOT NULL DEFAULT 0,
	file_sha256 TEXT NOT NULL DEFAULT '',
	file_path TEXT NOT NULL DEFAULT '',
	submitted_at {{ts}},
	defence_at {{ts}},
	score DOUBLE PRECISION,
	passed {{bool}},
	decided_at {{ts}},
	created_at {{ts}} NOT NULL,
	UNIQUE (registration_id, component, n)
);
CREATE TABLE panel_seats (
	sitting_id BIGINT NOT NULL REFERENCES sittings(id),
	user_id BIGINT NOT NULL REFERENCES users(id),
	score DOUBLE PRECISION,
	comment TEXT NOT NULL DEFAULT '',
	scored_at {{ts}},
	PRIMARY KEY (sitting_id, user_id)
);
CREATE INDEX panel_seats_user ON panel_seats(user_id);
CREATE TABLE declared_conflicts (
	user_id BIGINT NOT NULL REFERENCES users(id),
	registration_id BIGINT NOT NULL REFERENCES registrations(id),
	reason TEXT NOT NULL DEFAULT '',
	declared_at {{ts}} NOT NULL,
	PRIMARY KEY (user_id, registration_id)
);
CREATE TABLE certificates (
	id {{pk}},
	registration_id BIGINT NOT NULL UNIQUE REFERENCES registrations(id),
	number TEXT NOT NULL UNIQUE,
	code TEXT NOT NULL,
	holder_name TEXT NOT NULL,
	id_number TEXT NOT NULL,
	level_id BIGINT NOT NULL REFERENCES levels(id),
	issued_at {{ts}} NOT NULL,
	revoked_at {{ts}},
	revoke_reason TEXT NOT NULL DEFAULT '',
	revoked_by BIGINT REFERENCES users(id)
);
`},
	// A question is in the formal pool (drawn for formal exams, never seen
	// before one) or the practice pool (drawn for mock tests).
	{"0010_question_pools", `
ALTER TABLE questions ADD COLUMN pool TEXT NOT NULL DEFAULT 'formal'
`},
	// Panel members get their own role: a reviewer who sits on a panel or
	// has an organisation on record was an assessor given a reviewer's
	// account, which let them read every attempt.
	{"0011_panel_role", `
UPDATE users SET role = 'panel' WHERE role = 'reviewer' AND (
	id IN (SELECT user_id FROM panel_seats) OR id IN (SELECT user_id FROM affiliations))
`},
	// In a cluster a closed recording segment goes to object storage: its
	// key there, empty while it is only on the recording node's disk; and
	// the node that records it (its disk holds the file until then).
	{"0012_recording_blobs", `
ALTER TABLE recordings ADD COLUMN blob_key TEXT NOT NULL DEFAULT '';
ALTER TABLE recordings ADD COLUMN node TEXT NOT NULL DEFAULT '';
CREATE INDEX recordings_upload ON recordings (state, blob_key)
`},
	// A room's fencing number as its writes last saw it: a node whose lease
	// was taken over writes nothing with an older one.
	{"0013_room_fences", `
CREATE TABLE room_fences (room TEXT PRIMARY KEY, fence BIGINT NOT NULL)
`},
	// Notifications: where a person is reached; the outbox, written in the
	// same transaction as the event that causes each message and drained
	// by the sender; one-time login links (only their hash is kept); and
	// marks of the reminders already queued for a session.
	{"0014_notifications", `
ALTER TABLE users ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN mobile TEXT NOT NULL DEFAULT '';
CREATE TABLE outbox (
	id {{pk}},
	created_at {{ts}} NOT NULL,
	user_id BIGINT NOT NULL REFERENCES users(id),
	channel TEXT NOT NULL,
	address TEXT NOT NULL,
	kind TEXT NOT NULL,
	data TEXT NOT NULL,
	dedupe TEXT UNIQUE,
	batch TEXT NOT NULL DEFAULT '',
	state TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	next_at {{ts}} NOT NULL,
	lease_until {{ts}},
	sent_at {{ts}},
	error TEXT NOT NULL DEFAULT '',
	message_id TEXT NOT NULL UNIQUE
);
CREATE INDEX outbox_due ON outbox (state, next_at);
CREATE INDEX outbox_user ON outbox (user_id, id);
CREATE INDEX outbox_batch ON outbox (batch, state);
CREATE TABLE login_links (
	id {{pk}},
	token_hash TEXT NOT NULL UNIQUE,
	user_id BIGINT NOT NULL REFERENCES users(id),
	target TEXT NOT NULL,
	outbox_id BIGINT,
	created_at {{ts}} NOT NULL,
	expires_at {{ts}} NOT NULL,
	used_at {{ts}}
);
CREATE INDEX login_links_user ON login_links (user_id);
CREATE TABLE notice_marks (mark TEXT PRIMARY KEY, at {{ts}} NOT NULL)
`},
}

// Migrate applies every migration the database lacks, in order, and refuses a
// database that holds a migration this binary does not know.
func (db *DB) Migrate(ctx context.Context) error { return db.migrateTo(ctx, "") }

// migrateTo applies the migrations up to and including id (all when empty).
func (db *DB) migrateTo(ctx context.Context, id string) error {
	list := make([]*gormigrate.Migration, len(migrations))
	for i, m := range migrations {
		sql := db.expand(m.sql)
		list[i] = &gormigrate.Migration{ID: m.id, Migrate: func(tx *gorm.DB) error {
			for _, stmt := range strings.Split(sql, ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("migration %s: %w", m.id, err)
				}
			}
			return nil
		}}
	}
	opts := *gormigrate.DefaultOptions
	opts.TableName = "schema_migrations"
	opts.UseTransaction = true
	opts.ValidateUnknownMigrations = true
	m := gormigrate.New(db.DB.WithContext(ctx), &opts, list)
	var err error
	if id == "" {
		err = m.Migrate()
	} else {
		err = m.MigrateTo(id)
	}
	if errors.Is(err, gormigrate.ErrUnknownPastMigration) {
		return fmt.Errorf("%w (%v); upgrade examhall", ErrUnknownSchema, err)
	}
	return err
}

// SchemaVersion is the id of the newest migration this binary knows.
func SchemaVersion() string { return migrations[len(migrations)-1].id }

func (db *DB) expand(sql string) string {
	r := strings.NewReplacer(
		"{{pk}}", "INTEGER PRIMARY KEY AUTOINCREMENT",
		"{{ts}}", "DATETIME",
		"{{bool}}", "BOOLEAN",
		"{{clustered}}", "WITHOUT ROWID")
	if db.Dialect == Postgres {
		r = strings.NewReplacer(
			"{{pk}}", "BIGSERIAL PRIMARY KEY",
			"{{ts}}", "TIMESTAMPTZ",
			"{{bool}}", "BOOLEAN",
			"{{clustered}}", "")
	}
	return r.Replace(sql)
}
