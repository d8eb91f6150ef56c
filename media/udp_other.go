//go:build !linux

package media

import "net"

// forceReceiveBuffer cannot read or raise the buffer here: what
// SetReadBuffer got stands.
func forceReceiveBuffer(_ *net.UDPConn, want int) (int, error) { return want, nil }
