// Package accounts is the people who use examhall: candidates' and
// staff's accounts and their passwords (generated or chosen, hashed with
// argon2id, checked so that a refusal's time tells nothing). The web
// layer, the certificate programme and the demo all make and check
// accounts through it.
package accounts

import (
	"crypto/rand"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/alexedwards/argon2id"

	"github.com/examhall/examhall/store"
)

// A password a person chose gets argon2id at the OWASP parameters (~22 ms a
// hash on this machine). A password examhall generated (every candidate's: 10
// characters of a 31-letter alphabet, ~50 bits; a new staff account's: 80
// bits) cannot be guessed from a word list, so the stretching that protects
// weak human passwords adds only cost at the 5,000-candidate start rush; it
// gets light parameters (~2.5 ms), still ~10^4 core-years for a brute force.
// The parameters live in each hash, so either can change without
// invalidating stored ones.
var (
	chosenParams    = &argon2id.Params{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	generatedParams = &argon2id.Params{Memory: 4 * 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
)

// Origin says where a password came from, which sets how hard it is hashed.
type Origin int

// Password origins.
const (
	Chosen    Origin = iota // typed by a person
	Generated               // made by NewCandidatePassword or NewStaffPassword
)

// candidateAlphabet leaves out letters that are easy to misread (0/O, 1/I/L).
const candidateAlphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// HashPassword hashes a password for an account of the given role. A
// generated candidate password is normalised first (see
// NormalizeCandidatePassword); a chosen one is kept exactly as typed.
func HashPassword(password string, role store.Role, origin Origin) (string, error) {
	if origin == Generated {
		if role == store.RoleCandidate {
			password = NormalizeCandidatePassword(password)
		}
		return argon2id.CreateHash(password, generatedParams)
	}
	return argon2id.CreateHash(password, chosenParams)
}

// NewCandidatePassword generates a candidate's password, printed on the exam
// ticket as two groups of five, e.g. "K7Q2M-9XWPA".
func NewCandidatePassword() string {
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		// 256 is a multiple of 32, so the modulo has no bias.
		b[i] = candidateAlphabet[int(b[i])%len(candidateAlphabet)]
	}
	return string(b[:5]) + "-" + string(b[5:])
}

// NewStaffPassword generates an initial password for a staff account.
func NewStaffPassword() string { return rand.Text()[:16] }

// NormalizeCandidatePassword makes a typed candidate password comparable:
// case, spaces and dashes do not matter to an anxious candidate.
func NormalizeCandidatePassword(p string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t':
			return -1
		}
		return r
	}, strings.ToUpper(p))
}

// CheckPassword compares password with the account's hash. Only a
// generated candidate password (told apart by its hash's parameters) is
// compared without case, spaces and dashes.
func CheckPassword(u *store.User, password string) bool {
	light := lightHash(u.PasswordHash)
	if u.Role == store.RoleCandidate && light {
		password = NormalizeCandidatePassword(password)
	}
	if light {
		lightChecks.Add(1)
	} else {
		heavyChecks.Add(1)
	}
	ok, err := argon2id.ComparePasswordAndHash(password, u.PasswordHash)
	return err == nil && ok
}

// lightHash says whether a hash has the generated passwords' parameters.
func lightHash(hash string) bool {
	p, _, _, err := argon2id.DecodeHash(hash)
	return err == nil && p.Memory == generatedParams.Memory
}

// lightChecks and heavyChecks count password checks by their cost, for
// the test that every refusal costs the same.
var lightChecks, heavyChecks atomic.Int64

// Checks counts the password checks made so far, light (generated
// passwords' parameters) and heavy (chosen ones').
func Checks() (light, heavy int64) { return lightChecks.Load(), heavyChecks.Load() }

// RefuseEvenly makes a refused login cost one light and one heavy check
// whatever the account (unknown, generated password, chosen password), so
// the time of a refusal tells nothing about the account. u is the account
// whose own check was already made, or nil.
func RefuseEvenly(u *store.User, password string) {
	d := dummyHashes()
	switch {
	case u == nil:
		CheckPassword(d[0], password)
		CheckPassword(d[1], password)
	case lightHash(u.PasswordHash):
		CheckPassword(d[0], password)
	default:
		CheckPassword(d[1], password)
	}
}

// dummyHashes are checked on a refusal (see RefuseEvenly): [0] heavy,
// [1] light.
var dummyHashes = sync.OnceValue(func() [2]*store.User {
	s, _ := HashPassword(rand.Text(), store.RoleAdmin, Chosen)
	c, _ := HashPassword(rand.Text(), store.RoleCandidate, Generated)
	return [2]*store.User{{Role: store.RoleAdmin, PasswordHash: s}, {Role: store.RoleCandidate, PasswordHash: c}}
})
