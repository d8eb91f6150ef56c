package accounts

import (
	_ "embed"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/examhall/examhall/store"
)

// minPasswordLen is the shortest chosen password, in characters; it is
// kept exactly as typed (case, spaces and dashes count).
const minPasswordLen = 10

// Errors of a chosen password.
var (
	ErrPasswordShort    = store.NewError("accounts", store.Invalid, "password_short", "password too short")
	ErrPasswordWeak     = store.NewError("accounts", store.Invalid, "password_weak", "password too easy to guess")
	ErrPasswordMismatch = store.NewError("accounts", store.Invalid, "password_mismatch", "passwords differ")
)

//go:embed common-passwords.txt
var commonPasswordList string

// commonPasswords are refused whatever their length.
var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	for _, line := range strings.Split(commonPasswordList, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[line] = true
		}
	}
	return m
}()

// CheckChosenPassword applies the rules of a password a person chooses:
// at least 10 characters not counting spaces and dashes; at least 4
// different ones; not digits only (a birthday, a phone or ID number); not
// one of the commonest passwords; not containing the login name.
func CheckChosenPassword(pw, again, login string) error {
	core := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return unicode.ToLower(r)
	}, pw)
	if utf8.RuneCountInString(core) < minPasswordLen || len(pw) > 200 {
		return ErrPasswordShort
	}
	if pw != again {
		return ErrPasswordMismatch
	}
	distinct, digits := map[rune]bool{}, true
	for _, r := range core {
		distinct[r] = true
		digits = digits && unicode.IsDigit(r)
	}
	login = strings.ToLower(strings.TrimSpace(login))
	switch {
	case len(distinct) < 4, digits, commonPasswords[core], login != "" && strings.Contains(core, login):
		return ErrPasswordWeak
	}
	return nil
}
