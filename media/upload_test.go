package media_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

// uploaded waits until n segments of the attempt are in object storage.
func uploaded(t *testing.T, db *store.DB, attempt int64, n int, within time.Duration) []store.Recording {
	t.Helper()
	var recs []store.Recording
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		db.Where("attempt_id = ? AND blob_key <> ''", attempt).Order("id").Find(&recs)
		if len(recs) >= n {
			return recs
		}
	}
	t.Fatalf("%d segments in object storage after %v, want %d", len(recs), within, n)
	return nil
}

// In a cluster each recording segment goes to object storage when it
// closes and leaves the node's disk; it plays from there on any node. While
// the store is down, closed segments wait on disk (the backlog, on
// /metrics) and go up when it is back.
func TestSegmentsGoToObjectStorage(t *testing.T) {
	s3 := storetest.NewS3(t)
	db := storetestDB(t)
	attempt := attemptRow(t, db)
	reg := prometheus.NewRegistry()
	svc, err := media.New(media.Config{DB: db, Bus: store.NewMemBus(), DataDir: t.TempDir(), LoopbackOnly: true,
		KeyFrameEvery: 400 * time.Millisecond, RollEvery: time.Second, Blobs: s3.Open("recordings"), NodeID: "n1", Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	pub := newPublisher(t, true)
	pub.Connect(svc, attempt, media.PC)
	pub.Send(5 * time.Second) // the fixture has a key frame every 2 s: segments of 2 s
	recs := uploaded(t, db, attempt, 2, 10*time.Second)

	// Another node, which never had these files, plays each segment.
	other, err := media.New(media.Config{DB: db, DataDir: t.TempDir(), LoopbackOnly: true, Blobs: s3.Open("recordings"), NodeID: "n2"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	for _, r := range recs {
		if _, err := os.Stat(r.Path); !os.IsNotExist(err) {
			t.Errorf("segment %s still on the recording node's disk after its upload", r.Path)
		}
		f, _, err := other.OpenRecording(context.Background(), r)
		if err != nil {
			t.Fatalf("segment %d from another node: %v", r.ID, err)
		}
		copy := filepath.Join(t.TempDir(), "seg.webm")
		b, _ := io.ReadAll(f)
		f.Close()
		os.WriteFile(copy, b, 0o600)
		dur, _ := strconv.ParseFloat(ffprobe(t, "-show_entries", "format=duration", "-of", "csv=p=0", copy), 64)
		if dur < 1.5 || dur > 2.5 {
			t.Errorf("segment %d plays %.2f s, want about 2 s", r.ID, dur)
		}
		if streams := ffprobe(t, "-show_entries", "stream=codec_name", "-of", "csv=p=0", copy); streams != "vp8\nopus" {
			t.Errorf("segment %d streams %q", r.ID, streams)
		}
	}

	// The store goes down: segments close on disk and wait.
	s3.Stop()
	pub.Send(4500 * time.Millisecond)
	var waiting int64
	for end := time.Now().Add(15 * time.Second); waiting == 0 && time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		waiting = int64(testutil.ToFloat64(gauge(t, reg, "examhall_media_upload_backlog")))
	}
	if waiting == 0 {
		t.Fatal("no backlog on /metrics while the store is down")
	}
	s3.Start()
	before := len(recs)
	var left int64
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if db.Model(&store.Recording{}).Where("attempt_id = ? AND state = 'closed' AND blob_key = ''", attempt).Count(&left); left == 0 {
			break
		}
	}
	if left != 0 {
		t.Fatalf("%d closed segments not uploaded 20 s after the store came back", left)
	}
	recs = uploaded(t, db, attempt, before+int(waiting), time.Second)
	for _, r := range recs {
		if !strings.HasPrefix(r.BlobKey, "recordings/") || r.Node != "n1" {
			t.Errorf("segment %+v: want a recordings/ key and node n1", r)
		}
	}
}

// gauge finds a registered gauge by name.
func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return collectorFunc{reg, name}
}

type collectorFunc struct {
	reg  *prometheus.Registry
	name string
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {}
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) {
	mfs, _ := c.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == c.name {
			for _, m := range mf.GetMetric() {
				ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(c.name, "", nil, nil), prometheus.GaugeValue, m.GetGauge().GetValue())
			}
		}
	}
}
