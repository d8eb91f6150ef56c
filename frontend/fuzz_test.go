package frontend

import (
	"encoding/json"
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
