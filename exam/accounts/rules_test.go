package accounts

import (
	"errors"
	"strings"
	"testing"
)

func TestChosenPasswordRule(t *testing.T) {
	const id = "11010519491231002X"
	for _, c := range []struct {
		pw   string
		want error
	}{
		{"correct horse battery", nil},
		{"考试顺利通过吧朋友们", nil},
		{"Tr0ub4dor&3x", nil},
		{"short-one", ErrPasswordShort},
		{"          ", ErrPasswordShort},
		{"----------", ErrPasswordShort},
		{"a b-c d-e f-g", ErrPasswordShort}, // 7 characters once spaces and dashes go
		{"aaaaaaaaaaaa", ErrPasswordWeak},
		{"AaAaAaAaAaAa", ErrPasswordWeak},
		{"abababababab", ErrPasswordWeak},
		{"19491231002345", ErrPasswordWeak},
		{"138-0013-8000", ErrPasswordWeak},
		{"Password123", ErrPasswordWeak},
		{"QWERTY-UIOP", ErrPasswordWeak},
		{"woaini 1314", ErrPasswordWeak},
		{"me" + id, ErrPasswordWeak},
		{strings.ToLower(id), ErrPasswordWeak},
		{strings.Repeat("long enough ", 20), ErrPasswordShort}, // over 200 bytes
	} {
		if err := CheckChosenPassword(c.pw, c.pw, id); !errors.Is(err, c.want) && !(err == nil && c.want == nil) {
			t.Errorf("%q: %v, want %v", c.pw, err, c.want)
		}
	}
	if err := CheckChosenPassword("correct horse battery", "correct horse batter", id); !errors.Is(err, ErrPasswordMismatch) {
		t.Errorf("a mismatch: %v", err)
	}
}
