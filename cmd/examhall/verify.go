package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

// verifyAttempt is `examhall verify-attempt [flags] ID`.
func verifyAttempt(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var id int64
	if n := len(args); n > 0 {
		if v, err := strconv.ParseInt(args[n-1], 10, 64); err == nil {
			id, args = v, args[:n-1]
		}
	}
	if id <= 0 {
		return errors.New("usage: examhall verify-attempt [--data-dir DIR | --database URL] ATTEMPT_ID")
	}
	cfg, err := parseConfig("verify-attempt", args, os.Getenv, stderr)
	if err != nil {
		return err
	}
	db, err := store.Open(ctx, cfg.Database, cfg.DataDir)
	if err != nil {
		return err
	}
	defer db.Close()
	r, err := exam.New(exam.Config{DB: db}).Verify(ctx, id)
	if err != nil {
		return err
	}
	score := "none"
	if r.Score != nil {
		score = strconv.FormatFloat(*r.Score, 'f', -1, 64)
	}
	fmt.Fprintf(stdout, "attempt %d: %d events, status %s, %d answers, stored score %s, replayed score %g\n",
		r.AttemptID, r.Events, r.Status, r.Answers, score, r.Replayed)
	for _, p := range r.Problems {
		fmt.Fprintln(stdout, "  PROBLEM:", p)
	}
	if !r.OK() {
		return fmt.Errorf("attempt %d does not verify (%d problems)", id, len(r.Problems))
	}
	fmt.Fprintln(stdout, "OK: the chain holds and replays to the stored answers and score")
	return nil
}
