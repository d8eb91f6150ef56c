package media

import (
	"net"
	"os"
	"testing"
)

// The media port's receive buffer is what was asked, past the kernel's
// default cap when the process may raise it (root, as the tests run).
func TestReceiveBuffer(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if os.Geteuid() != 0 {
		t.Skip("raising the buffer past net.core.rmem_max needs root (CAP_NET_ADMIN)")
	}
	got, err := setReceiveBuffer(conn, udpBuffer)
	if err != nil || got < udpBuffer {
		t.Fatalf("receive buffer %d (%v), want at least %d", got, err, udpBuffer)
	}
}
