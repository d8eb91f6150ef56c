package store_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// A still written while object storage is down stays on the writing node's
// disk, its write standing; it reaches object storage, and so every other
// node, once the store is back; one removed meanwhile is forgotten.
func TestFilesWaitForObjectStorage(t *testing.T) {
	s3 := storetest.NewS3(t)
	blobs := s3.Open("examhall")
	here := &store.Files{Dir: t.TempDir(), Prefix: "stills", Blobs: blobs}
	there := &store.Files{Dir: t.TempDir(), Prefix: "stills", Blobs: blobs}
	s3.Stop()
	ctx := context.Background()
	still := []byte("\xff\xd8\xff a still")
	start := time.Now()
	name, err := here.Create(ctx, "12", func(n int) string { return "1700000000000-pc-face_absent.jpg" }, still)
	if err != nil {
		t.Fatalf("a still written while object storage is down: %v", err)
	}
	if err := here.Write(ctx, "13/gone.jpg", still); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("two writes with the store down took %v: the store's wait is not bounded", d)
	}
	os.RemoveAll(filepath.Join(here.Dir, "13")) // gone before the store returns
	if n := here.Pending(); n != 2 {
		t.Fatalf("%d files pending, want 2", n)
	}
	if r, _, err := here.Open(context.Background(), "12/"+name); err != nil {
		t.Fatalf("the writing node reads its own still: %v", err)
	} else {
		r.Close()
	}
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if left, err := here.RetryPending(short); err == nil || left != 2 {
		t.Fatalf("retry with the store down: %d left, %v; want 2 and an error", left, err)
	}

	s3.Start()
	if left, err := here.RetryPending(context.Background()); err != nil || left != 0 || here.Pending() != 0 {
		t.Fatalf("retry with the store back: %d left (%d marked), %v", left, here.Pending(), err)
	}
	r, _, err := there.Open(context.Background(), "12/"+name)
	if err != nil {
		t.Fatalf("another node reads the still once the store is back: %v", err)
	}
	defer r.Close()
	if got, _ := io.ReadAll(r); !bytes.Equal(got, still) {
		t.Fatalf("another node read %q", got)
	}
}
