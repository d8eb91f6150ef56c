package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

// The page's and the server's face checks that report the same event
// within a moment of each other make one flag, not two: both occurrences
// go into the one stored flag, whatever order their writes take.
func TestPageAndServerMakeOneFlag(t *testing.T) {
	e := newExamEnv(t, "sqlite", 2)
	ctx := t.Context()
	attempt := e.cands[0].attempt
	for range 10 {
		var wg sync.WaitGroup
		for _, src := range []struct {
			source string
			detail map[string]any
		}{{"page", map[string]any{}}, {"face", map[string]any{"device": "pc"}}} {
			wg.Go(func() {
				if err := e.proc.Observe(ctx, attempt, src.source, proctor.FaceAbsent, proctor.Start, src.detail); err != nil {
					t.Error(err)
				}
				end := map[string]any{"duration_ms": 8000.0}
				for k, v := range src.detail {
					end[k] = v
				}
				if err := e.proc.Observe(ctx, attempt, src.source, proctor.FaceAbsent, proctor.End, end); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	var flags []store.Flag
	e.db.Where("attempt_id = ? AND kind = ?", attempt, proctor.FaceAbsent).Find(&flags)
	if len(flags) != 1 || flags[0].Count != 20 {
		for _, f := range flags {
			t.Logf("flag %d: count %d, first %v", f.ID, f.Count, f.FirstAt)
		}
		t.Fatalf("%d flags for 20 occurrences of one kind within its merge window, want 1 counting 20", len(flags))
	}

	// Both still going on: the proctor's tick finds both past the
	// threshold at once.
	other := e.cands[1].attempt
	for _, src := range []struct {
		source string
		detail map[string]any
	}{{"page", map[string]any{}}, {"face", map[string]any{"device": "pc"}}} {
		if err := e.proc.Observe(ctx, other, src.source, proctor.FaceAbsent, proctor.Start, src.detail); err != nil {
			t.Fatal(err)
		}
	}
	var n int64
	for deadline := time.Now().Add(10 * time.Second); n == 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		e.db.Model(&store.Flag{}).Where("attempt_id = ?", other).Count(&n)
	}
	time.Sleep(500 * time.Millisecond) // more ticks
	flags = nil
	e.db.Where("attempt_id = ?", other).Find(&flags)
	if len(flags) != 1 || flags[0].Count != 2 {
		t.Fatalf("two streams past the threshold in one tick: %d flags (%+v), want 1 counting 2", len(flags), flags)
	}
}
