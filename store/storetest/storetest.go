// Package storetest gives tests a fresh database and bus of every kind
// available: SQLite always, PostgreSQL when EXAMHALL_TEST_POSTGRES holds a
// URL, Redis when EXAMHALL_TEST_REDIS does. `make test` and .ci/run start
// throwaway servers and set both.
package storetest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/examhall/examhall/store"
)

// Environment variables naming the test servers.
const (
	PostgresEnv = "EXAMHALL_TEST_POSTGRES"
	RedisEnv    = "EXAMHALL_TEST_REDIS"
)

// DBKinds lists the database kinds to test: "sqlite", and "postgres" when its
// URL is set.
func DBKinds() []string { return []string{"sqlite", "postgres"} }

// ForEachDB runs fn as a subtest on a fresh, migrated database of each kind.
// The PostgreSQL subtest skips, saying why, when EXAMHALL_TEST_POSTGRES is unset.
func ForEachDB(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, kind := range DBKinds() {
		t.Run(kind, func(t *testing.T) { fn(t, NewDB(t, kind)) })
	}
}

// NewDB returns a fresh, migrated database of the given kind, removed when the
// test ends.
func NewDB(t testing.TB, kind string) *store.DB {
	t.Helper()
	ctx := context.Background()
	dsn := ""
	if kind == "postgres" {
		dsn = freshPostgres(t)
	}
	db, err := store.Open(ctx, dsn, t.TempDir())
	if err != nil {
		t.Fatalf("open %s: %v", kind, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", kind, err)
	}
	return db
}

// PostgresURL creates an empty database on the test server and returns its
// URL, for a test that starts examhall processes on it; it skips, saying
// why, when EXAMHALL_TEST_POSTGRES is unset.
func PostgresURL(t testing.TB) string { t.Helper(); return freshPostgres(t) }

// RedisURL is the test Redis's URL on a database of its own (1 to 15),
// emptied first, for a test that starts examhall processes on it (they use
// fixed key names); it skips when EXAMHALL_TEST_REDIS is unset.
func RedisURL(t testing.TB, db int) string {
	t.Helper()
	u := os.Getenv(RedisEnv)
	if u == "" {
		t.Skipf("skipped: %s is not set (make test starts a throwaway Redis when redis-server is installed)", RedisEnv)
	}
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.Path = fmt.Sprintf("/%d", db)
	r, err := store.OpenRedis(context.Background(), pu.String(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.FlushDB(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pu.String()
}

// freshPostgres creates an empty database on the test server and returns its URL.
func freshPostgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresEnv)
	if base == "" {
		t.Skipf("PostgreSQL variant skipped: %s is not set (make test starts a throwaway server when postgresql is installed)", PostgresEnv)
	}
	ctx := context.Background()
	admin, err := store.Open(ctx, base, "")
	if err != nil {
		t.Fatalf("connect to test postgres: %v", err)
	}
	defer admin.Close()
	name := "eh_" + strings.ToLower(rand.Text()[:16])
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		t.Fatalf("create database: %v", err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	t.Cleanup(func() {
		a, err := store.Open(ctx, base, "")
		if err != nil {
			return
		}
		defer a.Close()
		a.Exec(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return u.String()
}

// ForEachBus runs fn as a subtest on a fresh bus and counters of each kind:
// in-process, and Redis when EXAMHALL_TEST_REDIS is set.
func ForEachBus(t *testing.T, fn func(t *testing.T, bus store.Bus, counters store.Counters)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		b := store.NewMemBus()
		t.Cleanup(func() { b.Close() })
		fn(t, b, store.NewMemCounters())
	})
	t.Run("redis", func(t *testing.T) {
		r := NewRedis(t)
		fn(t, r, r)
	})
}

// NewRedis connects to the test Redis with a prefix of its own, so parallel
// tests do not see each other's keys and channels.
func NewRedis(t testing.TB) *store.Redis {
	t.Helper()
	u := os.Getenv(RedisEnv)
	if u == "" {
		t.Skipf("Redis variant skipped: %s is not set (make test starts a throwaway server when redis-server is installed)", RedisEnv)
	}
	r, err := store.OpenRedis(context.Background(), u, "test:"+rand.Text()[:12]+":")
	if err != nil {
		t.Fatalf("connect to test redis: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
