package media

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/examhall/examhall/store"
)

// SegmentEvery is how long a recording segment lasts when segments go to
// object storage: a node that dies loses at most its open segments.
const SegmentEvery = 30 * time.Second

// uploadEvery is how often segments waiting on disk are tried again (the
// store was down, or the node restarted with a backlog).
const uploadEvery = 10 * time.Second

// uploads moves this node's closed segments to object storage.
type uploads struct {
	kick    chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	backlog int
}

func (s *Service) startUploads() {
	if s.cfg.Blobs == nil || s.cfg.DB == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.up = &uploads{kick: make(chan struct{}, 1), stop: cancel, done: make(chan struct{})}
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "examhall_media_upload_backlog",
			Help: "Closed recording segments on this node's disk not yet in object storage."}, func() float64 {
			s.up.mu.Lock()
			defer s.up.mu.Unlock()
			return float64(s.up.backlog)
		}))
	}
	go func() {
		defer close(s.up.done)
		t := time.NewTicker(uploadEvery)
		defer t.Stop()
		for {
			s.uploadPending(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-s.up.kick:
			}
		}
	}()
}

// kickUploads asks for an upload pass now (a segment just closed).
func (s *Service) kickUploads() {
	if s.up == nil {
		return
	}
	select {
	case s.up.kick <- struct{}{}:
	default:
	}
}

// stopUploads makes a last pass for the segments closed at shutdown, then
// stops; what it cannot send waits on disk for the next start.
func (s *Service) stopUploads() {
	if s.up == nil {
		return
	}
	s.up.stop()
	<-s.up.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.uploadPending(ctx)
}

// uploadPending sends every closed segment of this node that is still only
// on its disk, oldest first; a store that refuses leaves the rest for the
// next pass.
func (s *Service) uploadPending(ctx context.Context) {
	var recs []store.Recording
	err := s.cfg.DB.WithContext(ctx).Where("state IN ? AND blob_key = '' AND (node = ? OR node = '')", []string{"closed", "repaired"}, s.cfg.NodeID).
		Order("id").Find(&recs).Error
	if err != nil {
		return
	}
	left := len(recs)
	defer func() {
		s.up.mu.Lock()
		s.up.backlog = left
		s.up.mu.Unlock()
	}()
	for _, r := range recs {
		if ctx.Err() != nil {
			return
		}
		if _, err := os.Stat(r.Path); errors.Is(err, fs.ErrNotExist) {
			left-- // another node's legacy file, or gone: nothing to send
			continue
		}
		key := segmentKey(s.cfg.DataDir, r)
		if err := s.cfg.Blobs.Put(ctx, key, r.Path, "video/webm"); err != nil {
			s.log.Warn("segment upload failed; it stays on disk and is retried", "path", r.Path, "err", err, "backlog", left)
			return
		}
		if err := s.cfg.DB.WithContext(ctx).Model(&store.Recording{}).Where("id = ?", r.ID).Update("blob_key", key).Error; err != nil {
			return
		}
		os.Remove(r.Path)
		left--
	}
}

// segmentKey is a segment's object key: recordings/<attempt>/<file name>.
func segmentKey(dataDir string, r store.Recording) string {
	return "recordings/" + filepath.Base(filepath.Dir(r.Path)) + "/" + filepath.Base(r.Path)
}

// ErrNoRecording means a recording's file is neither on this node's disk
// nor in object storage (still being written on another node, or lost).
var ErrNoRecording = store.NewError("media", store.NotFound, "recording_unavailable", "the recording is not on this node and not in object storage")

// OpenRecording opens a recording segment for playback from any node: from
// object storage once uploaded, else from this node's disk.
func (s *Service) OpenRecording(ctx context.Context, r store.Recording) (io.ReadSeekCloser, time.Time, error) {
	if r.BlobKey != "" && s.cfg.Blobs != nil {
		b, err := s.cfg.Blobs.Open(ctx, r.BlobKey)
		if errors.Is(err, store.ErrNotFound) {
			return nil, time.Time{}, ErrNoRecording
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		return b, b.ModTime(), nil
	}
	f, err := os.Open(r.Path)
	if err != nil {
		return nil, time.Time{}, ErrNoRecording
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, time.Time{}, err
	}
	return f, fi.ModTime(), nil
}

// Backlog counts, per node, the closed segments still only on that node's
// disk (object storage down, or the node away); empty without object
// storage.
func (s *Service) Backlog(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	if s.cfg.Blobs == nil || s.cfg.DB == nil {
		return out, nil
	}
	var rows []struct {
		Node string
		N    int64
	}
	err := s.cfg.DB.WithContext(ctx).Model(&store.Recording{}).Select("node, COUNT(*) AS n").
		Where("state IN ? AND blob_key = ''", []string{"closed", "repaired"}).Group("node").Scan(&rows).Error
	for _, r := range rows {
		out[r.Node] = r.N
	}
	return out, err
}
