package certify

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzCheckIDNumber: any text a candidate types as an ID number is either
// refused or returned as 18 characters that pass the check again.
func FuzzCheckIDNumber(f *testing.F) {
	for _, s := range []string{"11010519491231002X", "110105194912310021", "", "x", "11010519491331002X", " 11010519491231002x "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		got, err := CheckIDNumber(id)
		if err != nil {
			return
		}
		if len(got) != 18 {
			t.Fatalf("%q accepted as %q", id, got)
		}
		if again, err := CheckIDNumber(got); err != nil || again != got {
			t.Fatalf("%q normalised to %q, which does not check again: %v", id, got, err)
		}
	})
}

// FuzzSniffDocument: any upload is refused or named pdf or docx by its
// content, never by chance.
func FuzzSniffDocument(f *testing.F) {
	p, err := ParsePolicy("{}")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("%PDF-1.7\n"))
	f.Add([]byte("PK\x03\x04"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		kind, err := SniffDocument(p, b)
		if err != nil {
			return
		}
		switch kind {
		case "pdf":
			if !bytes.HasPrefix(b, []byte("%PDF-")) {
				t.Fatalf("pdf without the signature: %.20q", b)
			}
		case "docx":
			if !bytes.HasPrefix(b, []byte("PK")) {
				t.Fatalf("docx that is no zip: %.20q", b)
			}
		default:
			t.Fatalf("kind %q", kind)
		}
	})
}

// FuzzParsePolicy: any rules text an admin saves is refused or parsed;
// nothing panics.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"{}", `{"pass_mark":60}`, `{"pass_mark":-1}`, "[", strings.Repeat("{", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParsePolicy(s); err == nil {
			ValidatePolicy(&p)
		}
	})
}
