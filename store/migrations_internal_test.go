package store

import (
	"context"
	"testing"
	"time"
)

// An assessor who was given a reviewer's account (they sit on a panel or
// have an organisation on record) becomes a panel member; a reviewer who
// only reviews stays one.
func TestMigrationGivesPanelMembersTheirRole(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.migrateTo(ctx, "0010_question_pools"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, name := range []string{"seated", "affiliated", "reviewer"} {
		if err := db.Exec("INSERT INTO users (role, username, password_hash, display_name, created_at) VALUES ('reviewer', ?, 'x', ?, ?)", name, name, now).Error; err != nil {
			t.Fatal(err)
		}
	}
	id := func(name string) (id int64) {
		db.Raw("SELECT id FROM users WHERE username = ?", name).Scan(&id)
		return id
	}
	db.Exec("INSERT INTO affiliations (user_id, organisation) VALUES (?, 'x')", id("affiliated"))
	var sitting int64
	for _, q := range []string{
		"INSERT INTO users (role, username, password_hash, display_name, created_at) VALUES ('candidate', 'c', 'x', 'c', ?)",
		"INSERT INTO programmes (code, name_zh, name_en, rules, created_at) VALUES ('P', 'x', 'x', '{}', ?)",
		"INSERT INTO levels (programme_id, code, rank, name_zh, name_en, training_hours, fee_cents, components) SELECT id, 'L1', 1, 'x', 'x', 0, 0, 'theory' FROM programmes WHERE ? IS NOT NULL",
		"INSERT INTO registrations (candidate_id, level_id, name, id_number, education, training_hours, status, created_at) SELECT u.id, l.id, 'c', 'x', 'x', 0, 'paid', ? FROM users u, levels l WHERE u.username = 'c'",
		"INSERT INTO sittings (registration_id, component, n, created_at) SELECT id, 'plan', 1, ? FROM registrations",
	} {
		if err := db.Exec(q, now).Error; err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Raw("SELECT id FROM sittings").Scan(&sitting)
	if err := db.Exec("INSERT INTO panel_seats (sitting_id, user_id) VALUES (?, ?)", sitting, id("seated")).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Role{"seated": RolePanel, "affiliated": RolePanel, "reviewer": RoleReviewer, "c": RoleCandidate} {
		var got Role
		db.Raw("SELECT role FROM users WHERE username = ?", name).Scan(&got)
		if got != want {
			t.Errorf("%s is %q after the migration, want %q", name, got, want)
		}
	}
}
