package vision

import "testing"

// TestResample checks the luma scaling the detector uses to bring every
// picture to its working size: a flat picture stays flat, a ramp stays a
// ramp going the same way, and halving averages 2x2 blocks.
func TestResample(t *testing.T) {
	flat := make([]uint8, 32*24)
	for i := range flat {
		flat[i] = 77
	}
	for _, size := range [][2]int{{64, 48}, {16, 12}, {40, 30}, {7, 5}} {
		for i, v := range resample(flat, 32, 32, 24, size[0], size[1]) {
			if v != 77 {
				t.Fatalf("flat 32x24 to %v: pixel %d is %d", size, i, v)
			}
		}
	}
	ramp := make([]uint8, 64*2)
	for x := range 64 {
		ramp[x], ramp[64+x] = uint8(4*x), uint8(4*x)
	}
	for _, w := range []int{160, 64, 48, 13} {
		out := resample(ramp, 64, 64, 2, w, 2)
		for x := 1; x < w; x++ {
			if out[x] < out[x-1] {
				t.Fatalf("ramp to %d wide: falls at %d: %v", w, x, out[:w])
			}
		}
		if out[0] > 8 || out[w-1] < 240 {
			t.Fatalf("ramp to %d wide: ends %d and %d", w, out[0], out[w-1])
		}
	}
	got, stride, w, h := halve([]uint8{0, 4, 9, 9, 8, 4, 9, 9}, 4, 4, 2)
	if w != 2 || h != 1 || stride != 2 || got[0] != 4 || got[1] != 9 {
		t.Fatalf("halve: %v %dx%d", got, w, h)
	}
}

func BenchmarkResample(b *testing.B) {
	src := make([]uint8, 960*720)
	for i := range src {
		src[i] = uint8(i * 7)
	}
	for b.Loop() {
		resample(src, 960, 960, 720, 640, 480)
	}
}
