package media

import (
	"net"
	"syscall"
)

// forceReceiveBuffer reads the buffer the kernel gave (capped by
// net.core.rmem_max) and, when short, asks past the cap with
// SO_RCVBUFFORCE, which a process with CAP_NET_ADMIN may.
func forceReceiveBuffer(conn *net.UDPConn, want int) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var got int
	var serr error
	read := func() {
		raw.Control(func(fd uintptr) { got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
	}
	if read(); serr == nil && got < want {
		raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, want) })
		read()
	}
	return got, serr
}
