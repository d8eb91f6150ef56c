package proctor

import "testing"

// FuzzParseRules: any rules an admin saves for an exam are refused or
// parsed into rules for every known signal kind; nothing panics.
func FuzzParseRules(f *testing.F) {
	f.Add(`{}`)
	f.Add(`{"tab_hidden":{"threshold_s":5,"severity":"critical"}}`)
	f.Add(`{"nope":{}}`)
	f.Add(`[`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRules(s)
		if err != nil {
			return
		}
		for kind := range DefaultRules {
			if _, ok := r[kind]; !ok {
				t.Fatalf("rules lost %s", kind)
			}
		}
	})
}

// FuzzCheckEvidence: any upload body and kind is judged without a panic,
// and only the kind's own file type passes.
func FuzzCheckEvidence(f *testing.F) {
	f.Add("face_occluded", []byte{0xff, 0xd8, 0xff, 0xe0})
	f.Add("talking", append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), make([]byte, 40)...))
	f.Add("talking", []byte{0xff, 0xd8, 0xff})
	f.Add("telepathy", []byte("RIFF"))
	f.Fuzz(func(t *testing.T, kind string, b []byte) {
		ext, ok := CheckEvidence(kind, b)
		if ok && ext != EvidenceExt(kind) {
			t.Fatalf("%q accepted as %q, its kind takes %q", kind, ext, EvidenceExt(kind))
		}
		if ok && ext == "wav" && string(b[8:12]) != "WAVE" || ok && ext == "jpg" && b[0] != 0xff {
			t.Fatalf("%q accepted a body that is not its type: % x", kind, b[:min(len(b), 12)])
		}
	})
}
