package exam

import (
	"bytes"
	"testing"
)

// FuzzParseBank: any bank file an admin imports (CSV or JSON) gives
// questions or line errors, never a panic, and every question it accepts
// is valid.
func FuzzParseBank(f *testing.F) {
	f.Add([]byte("kind,stem,A,B,C,D,E,F,G,H,answer,tags,difficulty,partial_credit,explanation\nsingle,题,甲,乙,,,,,,,A,t,1,false,\n"), false)
	f.Add([]byte(`[{"kind":"single","stem":"题","options":["甲","乙"],"answer":[0]}]`), true)
	f.Add([]byte("\xff\xfe"), false)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		var qs []Question
		var errs []LineError
		if asJSON {
			qs, errs = ParseBankJSON(data)
		} else {
			qs, errs = ParseBankCSV(bytes.NewReader(data))
		}
		if len(errs) > 0 {
			return
		}
		for i, q := range qs {
			if v := q.Validate(i + 1); len(v) > 0 {
				t.Fatalf("accepted an invalid question %+v: %v", q, v)
			}
		}
	})
}

// FuzzParseBlueprint: any blueprint text is refused or parsed.
func FuzzParseBlueprint(f *testing.F) {
	f.Add(`{"sections":[{"title_zh":"单选","title_en":"Single","kind":"single","count":10,"points":5}]}`)
	f.Add(`{"sections":[{"count":-1}]}`)
	f.Fuzz(func(t *testing.T, s string) { ParseBlueprint(s) })
}

// FuzzCheckBrowser: any User-Agent header is classified, never a panic.
func FuzzCheckBrowser(f *testing.F) {
	f.Add("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36")
	f.Add("Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0")
	f.Add("")
	f.Fuzz(func(t *testing.T, ua string) { CheckBrowser(ua) })
}

// FuzzParsePolicy: any exam policy an admin saves is refused or parsed.
func FuzzParsePolicy(f *testing.F) {
	f.Add(`{"credit_cap_seconds":300}`)
	f.Add(`{"grace_seconds":-1}`)
	f.Add(``)
	f.Fuzz(func(t *testing.T, s string) { ParsePolicy(s) })
}

// FuzzParseOpen: any query a candidate's page opens its socket with gives a
// positive attempt id or ErrNoAttempt, and a page token of 16 to 64 bytes
// or none.
func FuzzParseOpen(f *testing.F) {
	f.Add("12", "0123456789abcdef0123456789abcdef")
	f.Add("-1", "short")
	f.Add("9223372036854775808", "")
	f.Fuzz(func(t *testing.T, attempt, page string) {
		id, got, err := parseOpen(attempt, page)
		if err != nil {
			if err != ErrNoAttempt || id != 0 || got != "" {
				t.Fatalf("refused with %v, %d, %q", err, id, got)
			}
			return
		}
		if id <= 0 {
			t.Fatalf("accepted attempt %d", id)
		}
		if got != "" && (got != page || len(got) < 16 || len(got) > 64) {
			t.Fatalf("kept page %q of %q", got, page)
		}
		if got == "" && len(page) >= 16 && len(page) <= 64 {
			t.Fatalf("dropped a valid page %q", page)
		}
	})
}
