// Package vision checks the candidates' cameras on the server, whatever the
// page claims: it decodes VP8 key frames and counts faces in them with pigo
// (a pure-Go pixel-intensity cascade), so a tampered page cannot hide an
// empty seat or a second person.
package vision

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"image"
	"sort"

	pigo "github.com/esimov/pigo/core"
	"golang.org/x/image/vp8"
)

// facefinder is pigo's frontal face cascade (MIT, from github.com/esimov/pigo v1.4.6;
// its licence is facefinder.LICENSE).
//
//go:embed facefinder
var facefinder []byte

// ErrNotKeyFrame is returned for a frame that is not a VP8 key frame.
var ErrNotKeyFrame = errors.New("vision: not a VP8 key frame")

// Face is one detected face: its centre and size in pixels, and the
// cascade's confidence.
type Face struct {
	X, Y, Size int
	Score      float32
}

// Detector finds frontal faces in grey pictures. It is safe for concurrent use.
type Detector struct {
	cls *pigo.Pigo
	// MinScore is the cascade score a merged detection needs to count as
	// a person on its own (clear faces score 50-100 on the fixtures, a
	// covered one 20-35).
	MinScore float32
	// PresenceScore is the least score Faces returns: enough to say someone
	// is there (a covered or small face), and to count a face beside a
	// clear one (see Count), not to count people on its own (texture
	// scores under 7 on the fixtures).
	PresenceScore float32
}

// minShort is the least short side, in pixels, of the picture the cascade
// searches: VGA's.
const minShort = 480

// NewDetector loads the face cascade.
func NewDetector() (*Detector, error) {
	cls, err := pigo.NewPigo().Unpack(facefinder)
	if err != nil {
		return nil, fmt.Errorf("vision: load cascade: %w", err)
	}
	return &Detector{cls: cls, MinScore: 20, PresenceScore: 10}, nil
}

// Faces finds the faces in a picture, best first, down to PresenceScore,
// in the picture's pixels. Only its luma (Y) plane is read, so a decoded
// video frame needs no conversion. Overlapping detections of one face are
// merged.
func (d *Detector) Faces(img *image.YCbCr) []Face {
	b := img.Rect
	cols, rows := b.Dx(), b.Dy()
	px, stride := img.Y[img.YOffset(b.Min.X, b.Min.Y):], img.YStride
	// A small picture (a browser lowers the resolution when the CPU or the
	// network cannot keep up) is enlarged to VGA before the search, so
	// that its faces are not left to the cascade's smallest windows, where
	// a few blocky pixels decide (at 240x180 and 150 kbit/s, two people of
	// testdata/people side by side were counted as one in half the key
	// frames without it, in none with it). It costs what a VGA picture does: the search steps by a tenth
	// of the window from a tenth of the short side up, so its cost hardly
	// depends on the picture's size, which is also why a large picture is
	// searched as it comes (reducing it would save nothing).
	short := min(cols, rows)
	k := 1.0
	if short < minShort && short > 0 {
		k = float64(minShort) / float64(short)
		w, h := int(float64(cols)*k+0.5), int(float64(rows)*k+0.5)
		px, stride, cols, rows, short = resample(px, stride, cols, rows, w, h), w, w, h, min(w, h)
	}
	// A face fills at least a tenth of the frame's short side at a
	// proctoring distance; smaller windows mostly find texture.
	minSize := short / 10
	dets := d.cls.RunCascade(pigo.CascadeParams{
		MinSize: minSize, MaxSize: short, ShiftFactor: 0.1, ScaleFactor: 1.1,
		ImageParams: pigo.ImageParams{Pixels: px, Rows: rows, Cols: cols, Dim: stride},
	}, 0)
	dets = d.cls.ClusterDetections(dets, 0.2)
	var out []Face
	for _, f := range dets {
		if f.Q >= d.PresenceScore {
			out = append(out, Face{X: int(float64(f.Col) / k), Y: int(float64(f.Row) / k), Size: int(float64(f.Scale) / k), Score: f.Q})
		}
	}
	return mergeOverlapping(out)
}

// Count is how many of faces are people: each face clear enough on its
// own (MinScore), and each fainter one (PresenceScore) beside a clear one.
// The cascade's score varies from person to person (some clear frontal
// faces score under MinScore alone), while texture that fools it lands at
// any size and place; a faint face of a clear one's size, at its height and
// apart from it, is where a second person sitting or leaning beside the
// candidate is seen, smaller faces scoring less.
func (d *Detector) Count(faces []Face) int {
	n := 0
	for _, f := range faces {
		if f.Score >= d.MinScore || f.Score >= d.PresenceScore && d.besideClear(f, faces) {
			n++
		}
	}
	return n
}

// besideClear says whether f is beside a clear face: of about its size
// (within a factor 1.5), at about its height (centres within half the
// clear face's size) and apart from it (the boxes not overlapping
// sideways).
func (d *Detector) besideClear(f Face, faces []Face) bool {
	for _, g := range faces {
		if g == f || g.Score < d.MinScore {
			continue
		}
		small, big := min(f.Size, g.Size), max(f.Size, g.Size)
		dx, dy := abs(f.X-g.X), abs(f.Y-g.Y)
		if 2*big <= 3*small && 2*dy <= g.Size && 2*dx >= f.Size+g.Size {
			return true
		}
	}
	return false
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// mergeOverlapping keeps the best of detections whose boxes overlap: the
// clustering leaves nested boxes (a face and its upper half) apart.
func mergeOverlapping(fs []Face) []Face {
	sort.Slice(fs, func(i, j int) bool { return fs[i].Score > fs[j].Score })
	var out []Face
next:
	for _, f := range fs {
		for _, g := range out {
			if overlap(f, g) > 0.3 {
				continue next
			}
		}
		out = append(out, f)
	}
	return out
}

// overlap is the intersection of two boxes over the smaller one's area.
func overlap(a, b Face) float64 {
	ix := min(a.X+a.Size/2, b.X+b.Size/2) - max(a.X-a.Size/2, b.X-b.Size/2)
	iy := min(a.Y+a.Size/2, b.Y+b.Size/2) - max(a.Y-a.Size/2, b.Y-b.Size/2)
	if ix <= 0 || iy <= 0 {
		return 0
	}
	s := min(a.Size, b.Size)
	return float64(ix*iy) / float64(s*s)
}

// IsKeyFrame says whether a whole VP8 frame is a key frame.
func IsKeyFrame(frame []byte) bool {
	return len(frame) >= 10 && frame[0]&1 == 0 && frame[3] == 0x9d && frame[4] == 0x01 && frame[5] == 0x2a
}

// The largest picture analysed: a 1080p camera, either way up.
const (
	MaxWidth  = 1920
	MaxHeight = 1920
)

// ErrFrameSize is a key frame larger than any camera sends.
var ErrFrameSize = errors.New("vision: frame larger than a camera sends")

// DecodeKeyFrame decodes one whole VP8 key frame (as reassembled from RTP).
func DecodeKeyFrame(frame []byte) (*image.YCbCr, error) {
	if !IsKeyFrame(frame) {
		return nil, ErrNotKeyFrame
	}
	d := vp8.NewDecoder()
	d.Init(bytes.NewReader(frame), len(frame))
	fh, err := d.DecodeFrameHeader()
	if err != nil {
		return nil, fmt.Errorf("vision: %w", err)
	}
	// The decoder allocates the whole picture: a frame that declares
	// 16383x16383 would take 388 MiB. No camera sends more than this.
	if fh.Width > MaxWidth || fh.Height > MaxHeight || fh.Width == 0 || fh.Height == 0 {
		return nil, fmt.Errorf("%w: %dx%d, at most %dx%d", ErrFrameSize, fh.Width, fh.Height, MaxWidth, MaxHeight)
	}
	img, err := d.DecodeFrame()
	if err != nil {
		return nil, fmt.Errorf("vision: %w", err)
	}
	return img, nil
}
