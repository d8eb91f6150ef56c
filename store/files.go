package store

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Files is one kind of file the platform keeps (evidence stills, identity
// photos, question images) under Dir on this node's disk and, in a cluster,
// in object storage too under Prefix, so every node reads what any node
// wrote. Names are relative slash paths ("12/1700000000000-pc-no_face.jpg").
type Files struct {
	Dir, Prefix string
	Blobs       Blobs // nil: this node's disk only
}

func (f *Files) path(rel string) string { return filepath.Join(f.Dir, filepath.FromSlash(rel)) }

func (f *Files) key(rel string) string { return f.Prefix + "/" + rel }

// Write stores data as rel, durably (a temporary file synced and renamed),
// replacing what was there.
func (f *Files) Write(ctx context.Context, rel string, data []byte) error {
	p := f.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".upload-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		return err
	}
	return f.Upload(ctx, rel)
}

// Create writes a new file dir/name(n) for the first n (0, 1, ...) whose
// file does not exist yet, and returns the name used.
func (f *Files) Create(ctx context.Context, dir string, name func(n int) string, data []byte) (string, error) {
	if err := os.MkdirAll(f.path(dir), 0o750); err != nil {
		return "", err
	}
	for n := 0; ; n++ {
		rel := path.Join(dir, name(n))
		w, err := os.OpenFile(f.path(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if os.IsExist(err) {
			continue
		}
		if err != nil {
			return "", err
		}
		_, err = w.Write(data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", err
		}
		return name(n), f.Upload(ctx, rel)
	}
}

// Upload sends a file written on this node's disk to object storage. When
// the store refuses or is down, the file stays on this disk, marked
// pending, and RetryPending sends it later: the caller's write stands.
func (f *Files) Upload(ctx context.Context, rel string) error {
	if f.Blobs == nil {
		return nil
	}
	// A store that is down would hold the request for its client's retries.
	ctx, cancel := context.WithTimeout(ctx, uploadWait)
	defer cancel()
	if err := f.Blobs.Put(ctx, f.key(rel), f.path(rel), ""); err != nil {
		return f.markPending(rel)
	}
	return nil
}

// uploadWait bounds a write's wait for object storage (a still is a few
// tens of KB): after it the file waits on disk for RetryPending.
const uploadWait = 2 * time.Second

// pendingDir holds an empty marker per file not yet in object storage,
// named by the file's relative path with its slashes escaped.
func (f *Files) pendingDir() string { return filepath.Join(f.Dir, ".pending") }

func (f *Files) markPending(rel string) error {
	if err := os.MkdirAll(f.pendingDir(), 0o750); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(f.pendingDir(), url.PathEscape(rel)), nil, 0o640)
}

// Pending counts the files on this disk waiting for object storage.
func (f *Files) Pending() int {
	entries, _ := os.ReadDir(f.pendingDir())
	return len(entries)
}

// RetryPending sends the files waiting for object storage, oldest marker
// first, and stops at the first refusal; it returns how many still wait.
// A file deleted meanwhile (retention) is forgotten.
func (f *Files) RetryPending(ctx context.Context) (int, error) {
	if f.Blobs == nil {
		return 0, nil
	}
	entries, err := os.ReadDir(f.pendingDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	for i, d := range entries {
		rel, err := url.PathUnescape(d.Name())
		marker := filepath.Join(f.pendingDir(), d.Name())
		if err != nil {
			os.Remove(marker)
			continue
		}
		err = f.Blobs.Put(ctx, f.key(rel), f.path(rel), "")
		switch {
		case errors.Is(err, fs.ErrNotExist):
			os.Remove(marker)
		case err != nil:
			return len(entries) - i, err
		default:
			os.Remove(marker)
		}
	}
	return 0, nil
}

// Open reads a file from this node's disk or, failing that, object storage.
func (f *Files) Open(ctx context.Context, rel string) (io.ReadSeekCloser, time.Time, error) {
	if r, err := os.Open(f.path(rel)); err == nil {
		fi, err := r.Stat()
		if err != nil {
			r.Close()
			return nil, time.Time{}, err
		}
		return r, fi.ModTime(), nil
	}
	if f.Blobs == nil {
		return nil, time.Time{}, ErrNotFound
	}
	b, err := f.Blobs.Open(ctx, f.key(rel))
	if err != nil {
		return nil, time.Time{}, err
	}
	return b, b.ModTime(), nil
}

// List names the files of dir whose names end with suffix, sorted.
func (f *Files) List(ctx context.Context, dir, suffix string) ([]string, error) {
	var names []string
	entries, err := os.ReadDir(f.path(dir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, d := range entries {
		names = append(names, d.Name())
	}
	if f.Blobs != nil {
		keys, err := f.Blobs.List(ctx, f.key(dir)+"/")
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			names = append(names, k[strings.LastIndexByte(k, '/')+1:])
		}
	}
	names = slices.DeleteFunc(names, func(n string) bool { return !strings.HasSuffix(n, suffix) || strings.HasPrefix(n, ".") })
	slices.Sort(names)
	return slices.Compact(names), nil
}

// RemoveAll deletes dir and everything in it, on this disk and in object
// storage.
func (f *Files) RemoveAll(ctx context.Context, dir string) error {
	if f.Blobs != nil {
		keys, err := f.Blobs.List(ctx, f.key(dir)+"/")
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := f.Blobs.Delete(ctx, k); err != nil {
				return err
			}
		}
	}
	return os.RemoveAll(f.path(dir))
}
