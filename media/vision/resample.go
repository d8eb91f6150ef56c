package vision

// resample returns a luma plane (cols x rows, stride apart) scaled to w x h:
// halved by averaging 2x2 blocks while it is at least twice as large each
// way (so a large picture is not aliased), then interpolated bilinearly.
func resample(px []uint8, stride, cols, rows, w, h int) []uint8 {
	for cols >= 2*w && rows >= 2*h {
		px, stride, cols, rows = halve(px, stride, cols, rows)
	}
	// Each output pixel's centre in the source, in 1/256ths of a pixel,
	// as a left (top) neighbour and the weight of the right (bottom) one.
	at := func(n, src int) ([]int, []int) {
		i0, wt := make([]int, n), make([]int, n)
		for i := range n {
			p := ((2*i+1)*src*256)/(2*n) - 128
			p = max(p, 0)
			i0[i], wt[i] = min(p>>8, src-1), p&255
			if i0[i] == src-1 {
				wt[i] = 0
			}
		}
		return i0, wt
	}
	x0, wx := at(w, cols)
	y0, wy := at(h, rows)
	out := make([]uint8, w*h)
	for y := range h {
		top := px[y0[y]*stride:]
		bot := top
		if wy[y] > 0 {
			bot = px[(y0[y]+1)*stride:]
		}
		b := wy[y]
		row := out[y*w : y*w+w]
		for x := range row {
			i, a := x0[x], wx[x]
			j := i
			if a > 0 {
				j = i + 1
			}
			t := int(top[i])*(256-a) + int(top[j])*a
			u := int(bot[i])*(256-a) + int(bot[j])*a
			row[x] = uint8((t*(256-b) + u*b + 1<<15) >> 16)
		}
	}
	return out
}

// halve averages each 2x2 block of a luma plane.
func halve(px []uint8, stride, cols, rows int) ([]uint8, int, int, int) {
	w, h := cols/2, rows/2
	out := make([]uint8, w*h)
	for y := range h {
		a, b := px[2*y*stride:], px[(2*y+1)*stride:]
		row := out[y*w : y*w+w]
		for x := range row {
			row[x] = uint8((int(a[2*x]) + int(a[2*x+1]) + int(b[2*x]) + int(b[2*x+1]) + 2) >> 2)
		}
	}
	return out, w, w, h
}
