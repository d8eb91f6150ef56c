package e2e

import (
	"testing"

	"github.com/examhall/examhall/proctor"
	"github.com/examhall/examhall/store"
)

// The server's sound check flags talking only while the page's voice model
// is not listening (no model, or a page tampered with); while it listens,
// the server's reports are recorded and flag nothing. The page's own
// reports always count.
func TestServerTalkingIsASecondOpinion(t *testing.T) {
	e := newExamEnv(t, "sqlite", 2)
	ctx := t.Context()
	observe := func(attempt int64, source, kind string, phase proctor.Phase, detail map[string]any) {
		t.Helper()
		if err := e.proc.Observe(ctx, attempt, source, kind, phase, detail); err != nil {
			t.Fatal(err)
		}
	}
	flags := func(attempt int64) []store.Flag {
		var fs []store.Flag
		e.db.Where("attempt_id = ? AND kind = ?", attempt, proctor.Talking).Find(&fs)
		return fs
	}
	pc := map[string]any{"device": "pc"}

	listening, deaf := e.cands[0].attempt, e.cands[1].attempt
	observe(listening, "page", proctor.VoiceAnalysis, proctor.Start, nil)
	observe(listening, "media", proctor.Talking, proctor.Start, pc)
	observe(listening, "media", proctor.Talking, proctor.End, pc)
	if fs := flags(listening); len(fs) != 0 {
		t.Fatalf("the server's talking flagged while the page listens: %+v", fs)
	}
	var sigs int64
	e.db.Model(&store.Signal{}).Where("attempt_id = ? AND kind = ? AND source = ?", listening, proctor.Talking, "media").Count(&sigs)
	if sigs != 2 {
		t.Fatalf("the server's talking was not recorded: %d signals", sigs)
	}
	observe(listening, "page", proctor.Talking, proctor.Start, map[string]any{})
	if fs := flags(listening); len(fs) != 1 || fs[0].Severity != string(proctor.Info) {
		t.Fatalf("the page's talking: %+v, want one note", fs)
	}

	observe(deaf, "media", proctor.Talking, proctor.Start, pc)
	if fs := flags(deaf); len(fs) != 1 {
		t.Fatalf("the server's talking with no page model: %+v, want one flag", fs)
	}
}
