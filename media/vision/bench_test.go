package vision

import "testing"

// BenchmarkKeyFrame is the server's cost for one camera's key frame:
// decoding a 640x480 VP8 key frame and counting its faces.
func BenchmarkKeyFrame(b *testing.B) {
	d, err := NewDetector()
	if err != nil {
		b.Fatal(err)
	}
	var key []byte
	for _, f := range readIVF(b, "testdata/face.ivf") {
		if IsKeyFrame(f.data) && f.at > 0 {
			key = f.data
			break
		}
	}
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
