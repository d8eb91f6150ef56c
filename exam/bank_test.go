package exam

import (
	"strings"
	"testing"
)

func TestParseBankJSON(t *testing.T) {
	ok := `[{"kind":"single","stem":"s [img:` + strings.Repeat("ab", 32) + `.png]","options":["a","b","c","d"],"answer":[2],"tags":["t"],"difficulty":1},
	        {"kind":"truefalse","stem":"s","options":["正确","错误"],"answer":[1],"tags":[],"difficulty":3}]`
	qs, errs := ParseBankJSON([]byte(ok))
	if len(errs) != 0 || len(qs) != 2 || qs[0].Answer[0] != 2 {
		t.Fatalf("valid bank: %v %v", qs, errs)
	}
	tests := []struct {
		name, body string
		line       int
		field      string
	}{
		{"not json", `{`, 0, "file"},
		{"unknown field", `[{"kind":"single","stem":"s","options":["a","b"],"answer":[0],"difficulty":1,"x":1}]`, 0, "file"},
		{"bad kind", `[{"kind":"essay","stem":"s","options":["a","b"],"answer":[0],"difficulty":1}]`, 1, "kind"},
		{"empty stem", `[{"kind":"single","stem":" ","options":["a","b"],"answer":[0],"difficulty":1}]`, 1, "stem"},
		{"answer out of range", `[{"kind":"single","stem":"s","options":["a","b"],"answer":[5],"difficulty":1}]`, 1, "answer"},
		{"multiple with one answer", `[{"kind":"multiple","stem":"s","options":["a","b","c"],"answer":[0],"difficulty":1}]`, 1, "answer"},
		{"truefalse options", `[{"kind":"truefalse","stem":"s","options":["对","错"],"answer":[0],"difficulty":1}]`, 1, "options"},
		{"difficulty", `[{"kind":"single","stem":"s","options":["a","b"],"answer":[0],"difficulty":9}]`, 1, "difficulty"},
		{"bad image reference", `[{"kind":"single","stem":"看图 [img:../../etc/passwd]","options":["a","b"],"answer":[0],"difficulty":1}]`, 1, "stem"},
		{"second line", `[{"kind":"single","stem":"s","options":["a","b"],"answer":[0],"difficulty":1},{"kind":"single","stem":"s","options":["a","b"],"answer":[0,0],"difficulty":1}]`, 2, "answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			qs, errs := ParseBankJSON([]byte(tt.body))
			if qs != nil || len(errs) == 0 {
				t.Fatalf("accepted: %v", qs)
			}
			if errs[0].Line != tt.line || errs[0].Field != tt.field {
				t.Fatalf("got %v, want line %d field %s", errs, tt.line, tt.field)
			}
		})
	}
}
