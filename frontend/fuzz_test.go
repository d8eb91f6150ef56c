package frontend

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// FuzzSocketMessage: any message a device sends on a socket is routed by a
// type, or refused; peeking at a cut-off message's type never panics and
// never invents a type longer than 64 bytes.
func FuzzSocketMessage(f *testing.F) {
	f.Add([]byte(`{"type":"answer","seq":1,"question":3,"value":[0]}`))
	f.Add([]byte(`{"id":{"a":[1,2]},"type":"view_answer","sdp":"v=0`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &Inbound{}
		if json.Unmarshal(b, m) == nil && m.Seq != nil {
			_ = *m.Seq
		}
		if typ := peekType(b); len(typ) > 64 {
			t.Fatalf("peeked a type of %d bytes", len(typ))
		}
	})
}

// FuzzParseFocus: any view_focus a console sends names an attempt (0 or
// more) or is refused.
func FuzzParseFocus(f *testing.F) {
	f.Add([]byte(`{"type":"view_focus","attempt_id":12}`))
	f.Add([]byte(`{"type":"view_focus","attempt_id":-3}`))
	f.Add([]byte(`{"type":"view_focus","attempt_id":1e30}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parseFocus(b)
		if err != nil && (err != ErrBadRequest || id != 0) {
			t.Fatalf("refused with %v, %d", err, id)
		}
		if err == nil && id < 0 {
			t.Fatalf("accepted attempt %d", id)
		}
	})
}

// FuzzForwardedFor: whatever X-Forwarded-For a client sends, the address
// believed is the peer's unless the peer is a trusted proxy, and is always
// the peer or an address from the header.
func FuzzForwardedFor(f *testing.F) {
	f.Add("10.0.0.1", "203.0.113.7, 10.0.0.2")
	f.Add("192.0.2.1", "203.0.113.7")
	f.Add("10.0.0.1", "garbage,, ::1 ,10.0.0.3")
	_, proxies, _ := net.ParseCIDR("10.0.0.0/8")
	trusted := func(ip string) bool { a := net.ParseIP(ip); return a != nil && proxies.Contains(a) }
	f.Fuzz(func(t *testing.T, peer, header string) {
		got := forwardedFor(peer, []string{header}, trusted)
		if !trusted(peer) {
			if got != peer {
				t.Fatalf("believed %q from untrusted %q", got, peer)
			}
			return
		}
		if got != peer && (net.ParseIP(got) == nil || !strings.Contains(header, got)) {
			t.Fatalf("%q is neither the peer nor a hop of %q", got, header)
		}
	})
}
