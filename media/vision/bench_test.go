package vision

import (
	"fmt"
	"image"
	"testing"

	xdraw "golang.org/x/image/draw"
)

// BenchmarkKeyFrame is the server's cost for one camera's key frame:
// decoding a 640x480 VP8 key frame and counting its faces.
func BenchmarkKeyFrame(b *testing.B) {
	d, err := NewDetector()
	if err != nil {
		b.Fatal(err)
	}
	key := firstKeyFrame(b)
	b.ReportAllocs()
	for b.Loop() {
		img, err := DecodeKeyFrame(key)
		if err != nil {
			b.Fatal(err)
		}
		if n := d.Count(d.Faces(img)); n != 1 {
			b.Fatalf("%d faces", n)
		}
	}
}

// BenchmarkDecode is the decoding part alone.
func BenchmarkDecode(b *testing.B) {
	var key []byte
	for _, f := range readIVF(b, "testdata/face.ivf") {
		if IsKeyFrame(f.data) {
			key = f.data
			break
		}
	}
	for b.Loop() {
		if _, err := DecodeKeyFrame(key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFacesAtSize is the face search alone on the fixture's key frame
// as cameras of other sizes send it: a browser that lowered the resolution
// (320x240) and an HD camera (960x720: 1280x720 with its sides cropped).
func BenchmarkFacesAtSize(b *testing.B) {
	d, err := NewDetector()
	if err != nil {
		b.Fatal(err)
	}
	key := firstKeyFrame(b)
	img, err := DecodeKeyFrame(key)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []image.Point{{320, 240}, {640, 480}, {960, 720}} {
		b.Run(fmt.Sprintf("%dx%d", size.X, size.Y), func(b *testing.B) {
			pic := resized(img, size)
			for b.Loop() {
				if n := d.Count(d.Faces(pic)); n != 1 {
					b.Fatalf("%d faces", n)
				}
			}
		})
	}
}

// resized is img's luma scaled to size (chroma left grey: Faces reads
// only luma).
func resized(img *image.YCbCr, size image.Point) *image.YCbCr {
	out := image.NewYCbCr(image.Rectangle{Max: size}, image.YCbCrSubsampleRatio420)
	src := &image.Gray{Pix: img.Y, Stride: img.YStride, Rect: img.Rect}
	dst := &image.Gray{Pix: out.Y, Stride: out.YStride, Rect: out.Rect}
	xdraw.BiLinear.Scale(dst, dst.Rect, src, src.Rect, xdraw.Src, nil)
	return out
}

// firstKeyFrame is the face fixture's first key frame after its start.
func firstKeyFrame(b *testing.B) []byte {
	for _, f := range readIVF(b, "testdata/face.ivf") {
		if IsKeyFrame(f.data) && f.at > 0 {
			return f.data
		}
	}
	b.Fatal("no key frame in testdata/face.ivf")
	return nil
}
