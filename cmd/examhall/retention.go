package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/examhall/examhall/proctor/review"
	"github.com/examhall/examhall/store"
)

// retention is `examhall retention [--days N] [--apply] [store flags]`: it
// lists (or, with --apply, deletes) the recordings (and face analysis
// stills) of attempts whose result became final more than N days ago
// (default 90). Attempts still under
// review keep theirs. Deletions are audited.
func retention(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var rest []string
	days, apply := review.DefaultRetentionDays, false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--apply" || a == "-apply":
			apply = true
		case a == "--days" || a == "-days":
			if i+1 >= len(args) {
				return fmt.Errorf("--days needs a number")
			}
			i++
			if _, err := fmt.Sscan(args[i], &days); err != nil || days < 1 {
				return fmt.Errorf("--days wants a number of days ≥ 1")
			}
		case strings.HasPrefix(a, "--days="):
			if _, err := fmt.Sscan(strings.TrimPrefix(a, "--days="), &days); err != nil || days < 1 {
				return fmt.Errorf("--days wants a number of days ≥ 1")
			}
		default:
			rest = append(rest, a)
		}
	}
	cfg, err := parseConfig("retention", rest, os.Getenv, stderr)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	now := time.Now()
	list, err := review.New(db).Expired(ctx, days, now)
	if err != nil {
		return err
	}
	for _, r := range list {
		fmt.Fprintf(stdout, "attempt %d  %-5s  %s  %d bytes\n", r.AttemptID, r.Device, r.Path, r.SizeBytes)
	}
	if !apply {
		fmt.Fprintf(stdout, "%d recordings are past %d days after their final result; nothing was deleted (dry run: add --apply)\n", len(list), days)
		return nil
	}
	blobs, err := openBlobs(ctx, cfg)
	if err != nil {
		return err
	}
	n, err := review.New(db).Purge(ctx, blobs, list, now)
	fmt.Fprintf(stdout, "deleted %d recordings (audited)\n", n)
	if err != nil {
		return err
	}
	// The face analysis stills of those attempts go with their recordings.
	gone := map[int64]bool{}
	for _, r := range list[:n] {
		if !gone[r.AttemptID] {
			gone[r.AttemptID] = true
			stills := &store.Files{Dir: filepath.Join(cfg.DataDir, "stills"), Prefix: "stills", Blobs: blobs}
			if err := stills.RemoveAll(ctx, strconv.FormatInt(r.AttemptID, 10)); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(stdout, "deleted the stills of %d attempts\n", len(gone))
	return nil
}
