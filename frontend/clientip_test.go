package frontend

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// X-Forwarded-For is believed only from a trusted proxy, and only up to the
// first address that is not one.
func TestClientIPFromTrustedProxiesOnly(t *testing.T) {
	_, proxies, _ := net.ParseCIDR("10.0.0.0/8")
	for _, c := range []struct {
		name, remote, xff, want string
		trusted                 bool
	}{
		{"no proxies: the header is ignored", "198.51.100.9:5000", "203.0.113.1", "198.51.100.9", false},
		{"from the proxy", "10.0.0.2:5000", "203.0.113.1", "203.0.113.1", true},
		{"a spoofed hop before the real client", "10.0.0.2:5000", "1.2.3.4, 203.0.113.1", "203.0.113.1", true},
		{"two proxies", "10.0.0.2:5000", "203.0.113.1, 10.0.0.3", "203.0.113.1", true},
		{"not from the proxy", "198.51.100.9:5000", "203.0.113.1", "198.51.100.9", true},
		{"garbage in the header", "10.0.0.2:5000", "not-an-ip", "10.0.0.2", true},
	} {
		s := &Server{}
		if c.trusted {
			s.cfg.TrustedProxies = []*net.IPNet{proxies}
		}
		var got string
		h := s.withClientIP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = clientIP(r) }))
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		r.Header.Set("X-Forwarded-For", c.xff)
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
