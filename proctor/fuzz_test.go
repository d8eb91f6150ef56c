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
