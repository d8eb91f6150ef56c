package accounts

import (
	"net/mail"
	"strings"
	"testing"
)

// FuzzCheckContact: whatever a candidate types as an email or mobile at
// sign-up is refused, or is a bare address a mail server takes and a
// number of 6 to 15 digits.
func FuzzCheckContact(f *testing.F) {
	for _, s := range [][2]string{{"chen@example.org", "13800138000"}, {"", "+8613800138000"}, {"Chen <chen@example.org>", ""}, {"a@b@c", "12"}, {"", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, email, mobile string) {
		if CheckContact(email, mobile) != nil {
			return
		}
		if email != "" {
			a, err := mail.ParseAddress(email)
			if err != nil || a.Address != email {
				t.Fatalf("accepted email %q", email)
			}
		}
		if digits := strings.TrimPrefix(mobile, "+"); mobile != "" && (len(digits) < 6 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "") {
			t.Fatalf("accepted mobile %q", mobile)
		}
	})
}
