package vision

import (
	"encoding/binary"
	"os"
	"testing"
	"time"
)

// ivfFrame is one frame of an IVF file and its time.
type ivfFrame struct {
	at   time.Duration
	data []byte
}

// readIVF reads the frames of an IVF file (32-byte header, then each frame
// with a 12-byte header: size and timestamp).
func readIVF(t testing.TB, path string) []ivfFrame {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 32 || string(b[:4]) != "DKIF" {
		t.Fatalf("%s is not IVF", path)
	}
	rate, scale := binary.LittleEndian.Uint32(b[16:]), binary.LittleEndian.Uint32(b[20:])
	var out []ivfFrame
	for p := int(binary.LittleEndian.Uint16(b[6:])); p+12 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[p:]))
		pts := binary.LittleEndian.Uint64(b[p+4:])
		p += 12
		if p+n > len(b) {
			break
		}
		out = append(out, ivfFrame{at: time.Duration(pts) * time.Second * time.Duration(scale) / time.Duration(rate), data: b[p : p+n]})
		p += n
	}
	return out
}
