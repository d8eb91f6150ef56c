package media

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
)

// Track numbers in a recording.
const (
	videoTrack = 1
	audioTrack = 2
)

// cuesReserve is the space kept after the header for the seek index, which
// is written on close so a finished file is seekable.
const cuesReserve = 64 << 10

// file is one WebM file being written: VP8 video and, from a PC, Opus audio,
// straight from RTP (no transcoding). Timestamps are milliseconds from the
// file's wall-clock start, strictly increasing per track.
type file struct {
	path    string
	started time.Time
	f       *os.File
	writers []webm.BlockWriteCloser
	last    [3]int64 // last timestamp per track number
	wrote   bool
}

func trackEntries(audio bool) []webm.TrackEntry {
	ts := []webm.TrackEntry{{Name: "video", TrackNumber: videoTrack, TrackUID: 1, CodecID: "V_VP8", TrackType: 1,
		Video: &webm.Video{PixelWidth: 640, PixelHeight: 480}}}
	if audio {
		ts = append(ts, webm.TrackEntry{Name: "audio", TrackNumber: audioTrack, TrackUID: 2, CodecID: "A_OPUS", TrackType: 2,
			Audio: &webm.Audio{SamplingFrequency: 48000, Channels: 2}})
	}
	return ts
}

func createFile(path string, started time.Time, audio bool) (*file, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, err
	}
	ws, err := webm.NewSimpleBlockWriter(f, trackEntries(audio),
		mkvcore.WithSeekHead(true), mkvcore.WithCues(cuesReserve),
		mkvcore.WithSegmentInfo(&webm.Info{TimecodeScale: 1000000, MuxingApp: "examhall", WritingApp: "examhall"}),
		// Clusters start at key frames and last at most 2 s, so a file cut
		// by a crash plays to its last complete cluster.
		mkvcore.WithMaxKeyframeInterval(videoTrack, 4000), mkvcore.WithMinMaxClusterDuration(videoTrack, 1000, 2000))
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return &file{path: path, started: started, f: f, writers: ws}, nil
}

// write adds one frame at ts milliseconds from the file's start.
func (w *file) write(track int, key bool, ts int64, data []byte) error {
	if ts <= w.last[track] && w.wrote {
		ts = w.last[track] + 1 // keep timestamps strictly increasing
	}
	if ts < 0 {
		ts = 0
	}
	w.last[track] = ts
	w.wrote = true
	_, err := w.writers[track-1].Write(key, ts, data)
	return err
}

// close writes the seek index and duration and closes the file.
func (w *file) close() (int64, error) {
	var first error
	for _, bw := range w.writers {
		if err := bw.Close(); err != nil && first == nil {
			first = err
		}
	}
	fi, err := os.Stat(w.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), first
}

// Repair rewrites a recording cut off by a crash: every complete block is
// copied into a new file, which gets a seek index and a duration, and
// replaces the old one. It returns the duration recovered.
func Repair(path string) (time.Duration, error) {
	in, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	blocks, audio, err := readBlocks(in, path)
	if err != nil {
		return 0, err
	}
	tmp := strings.TrimSuffix(path, ".webm") + ".repair.webm"
	os.Remove(tmp)
	end, err := writeBlocks(tmp, blocks, audio)
	if err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, err
	}
	return time.Duration(end) * time.Millisecond, nil
}

// block is one frame read back from a recording.
type block struct {
	key  bool
	ts   int64
	data []byte
}

// readBlocks reads every complete block of the video and audio tracks of
// the recording in (at path), by track number, and says whether it has
// audio. A read error fails it only when no video block could be read.
func readBlocks(in io.Reader, path string) (blocks [3][]block, audio bool, err error) {
	var readErr error
	readers, err := mkvcore.NewSimpleBlockReader(in, mkvcore.WithOnErrorHandler(func(e error) {
		if !errors.Is(e, io.ErrUnexpectedEOF) && !errors.Is(e, io.EOF) {
			readErr = e
		}
	}), mkvcore.WithOnFatalHandler(func(e error) { readErr = e }))
	if err != nil {
		return blocks, false, fmt.Errorf("media: repair %s: %w", path, err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, r := range readers {
		n := int(r.TrackEntry().TrackNumber)
		if n != videoTrack && n != audioTrack {
			continue
		}
		if n == audioTrack {
			audio = true
		}
		wg.Go(func() {
			for {
				b, key, ts, err := r.Read()
				if err != nil {
					return
				}
				mu.Lock()
				blocks[n] = append(blocks[n], block{key, ts, append([]byte(nil), b...)})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, r := range readers {
		r.Close()
	}
	if readErr != nil && len(blocks[videoTrack]) == 0 {
		return blocks, false, fmt.Errorf("media: repair %s: %w", path, readErr)
	}
	return blocks, audio, nil
}

// writeBlocks writes blocks to a new file at path, interleaving the tracks
// by time as the original was written, and returns the last timestamp. A
// file it could not finish is removed.
func writeBlocks(path string, blocks [3][]block, audio bool) (int64, error) {
	out, err := createFile(path, time.Time{}, audio)
	if err != nil {
		return 0, err
	}
	var end int64
	i, j := 0, 0
	for i < len(blocks[videoTrack]) || j < len(blocks[audioTrack]) {
		var b block
		track := videoTrack
		if j < len(blocks[audioTrack]) && (i >= len(blocks[videoTrack]) || blocks[audioTrack][j].ts < blocks[videoTrack][i].ts) {
			b, track = blocks[audioTrack][j], audioTrack
			j++
		} else {
			b = blocks[videoTrack][i]
			i++
		}
		if err := out.write(track, b.key, b.ts, b.data); err != nil {
			out.close()
			os.Remove(path)
			return 0, err
		}
		end = max(end, b.ts)
	}
	if _, err := out.close(); err != nil {
		os.Remove(path)
		return 0, err
	}
	return end, nil
}

func osStat(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
