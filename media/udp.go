package media

import "net"

// udpBuffer is the receive buffer asked for the one UDP port that carries
// every device's media: about 0.8 s of 300 candidates' cameras, so that a
// pause of the reading goroutine (a GC, a busy core) drops nothing.
const udpBuffer = 16 << 20

// setReceiveBuffer gives conn a receive buffer of want bytes: as the
// kernel allows, then past that limit where the system lets the process
// (forceReceiveBuffer). It returns the size the kernel reports (on Linux
// twice the buffer, its bookkeeping counted), or want where it cannot
// tell.
func setReceiveBuffer(conn *net.UDPConn, want int) (int, error) {
	if err := conn.SetReadBuffer(want); err != nil {
		return 0, err
	}
	return forceReceiveBuffer(conn, want)
}
