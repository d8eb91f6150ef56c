// Package store is examhall's persistence: the gorm models, ordered migrations,
// the two databases (embedded SQLite and PostgreSQL), and the two event buses
// and counters (in-process and Redis). It knows no domain rules.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialect names the database behind a DB.
type Dialect string

// The two supported databases.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the system of record: a gorm handle and the dialect it speaks.
type DB struct {
	*gorm.DB
	Dialect Dialect
	// Location is a loggable description of the database (no password).
	Location string
}

// Open connects to the database named by dsn: empty means the SQLite file
// examhall.db in dataDir, a postgres:// or postgresql:// URL means PostgreSQL.
// It does not migrate; call Migrate.
func Open(ctx context.Context, dsn, dataDir string) (*DB, error) {
	cfg := &gorm.Config{
		Logger:                 logger.Discard,
		NowFunc:                func() time.Time { return time.Now().UTC() },
		SkipDefaultTransaction: true,
		TranslateError:         true,
	}
	var db *DB
	switch {
	case dsn == "":
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("store: create data dir: %w", err)
		}
		path := filepath.Join(dataDir, "examhall.db")
		g, err := gorm.Open(sqlite.Open(sqliteDSN(path)), cfg)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		}
		db = &DB{DB: g, Dialect: SQLite, Location: path}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, fmt.Errorf("%w: database URL: %v", ErrBadURL, err)
		}
		g, err := gorm.Open(postgres.Open(dsn), cfg)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres %s: %w", u.Redacted(), err)
		}
		db = &DB{DB: g, Dialect: Postgres, Location: u.Redacted()}
	default:
		return nil, fmt.Errorf("%w: database must be empty (SQLite in the data dir) or a postgres:// URL", ErrBadURL)
	}
	sqlDB, err := db.DB.DB()
	if err != nil {
		return nil, err
	}
	if db.Dialect == Postgres {
		sqlDB.SetMaxOpenConns(32)
		sqlDB.SetMaxIdleConns(16)
	} else {
		// SQLite has one writer; readers share WAL snapshots. A small pool keeps
		// writers queueing on busy_timeout instead of piling up.
		sqlDB.SetMaxOpenConns(8)
		sqlDB.SetMaxIdleConns(8)
	}
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// sqliteDSN sets the pragmas on every connection of the pool. busy_timeout
// comes first so the others wait for a lock instead of failing with
// SQLITE_BUSY; WAL lets readers run beside the writer; synchronous=FULL makes
// a commit durable before it returns (an acknowledged answer survives a power
// cut); foreign_keys is off by default in SQLite. temp_store=MEMORY keeps
// statement journals (multi-row upserts write them) off the disk, and a
// 32 MB page cache per connection keeps the hot pages of thousands of
// attempts in memory. _txlock=immediate takes the write lock at BEGIN, so
// two writers never deadlock on a lock upgrade.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=temp_store(MEMORY)" +
		"&_pragma=cache_size(-32000)&_txlock=immediate"
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	sqlDB, err := db.DB.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", db.Location, err)
	}
	return nil
}

// Close closes the connection pool.
func (db *DB) Close() error {
	sqlDB, err := db.DB.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// translate maps gorm's errors to the store's sentinels.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}
