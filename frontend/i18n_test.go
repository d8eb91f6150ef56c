package frontend

import (
	"encoding/json"
	"io/fs"

	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/i18n"

	"regexp"
	"strings"
	"testing"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/exam/certify"
	"github.com/examhall/examhall/proctor"
)

// Every dictionary entry has both languages, and every key a template or the
// Go code asks for exists.
func TestDictionaryIsComplete(t *testing.T) {
	i18n.Keys(func(k string, v i18n.Text) {
		if strings.TrimSpace(v.Zh) == "" || strings.TrimSpace(v.En) == "" {
			t.Errorf("%s lacks a language: %+v", k, v)
		}
	})
	used := regexp.MustCompile(`t "([a-z_.]+)"|T\("([a-z_.]+)"`)
	fs.WalkDir(assets, ".", func(path string, d fs.DirEntry, err error) error {
		if d.IsDir() || !strings.HasSuffix(path, ".html") {
			return nil
		}
		b, _ := assets.ReadFile(path)
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			if !i18n.Has(m[1]) {
				t.Errorf("%s uses unknown key %q", path, m[1])
			}
		}
		return nil
	})
	// Keys the pages' JavaScript asks for, where written out whole.
	jsKey := regexp.MustCompile(`'([a-z]+(?:\.[a-z_]+)+)'`)
	fs.WalkDir(assets, "static", func(path string, d fs.DirEntry, err error) error {
		if d.IsDir() || !strings.HasSuffix(path, ".js") {
			return nil
		}
		b, _ := assets.ReadFile(path)
		for _, m := range jsKey.FindAllStringSubmatch(string(b), -1) {
			if strings.HasSuffix(m[1], ".js") || strings.HasSuffix(m[1], ".json") {
				continue
			}
			if !i18n.Has(m[1]) {
				t.Errorf("%s uses unknown key %q", path, m[1])
			}
		}
		return nil
	})
	for _, code := range []string{"bad_credentials", "missing_credentials", "account_disabled", "csrf", "cross_origin",
		"unauthenticated", "session_expired", "forbidden", "bad_request", "too_large", "not_found", "conflict", "internal", "too_many_attempts",
		"password_short", "password_mismatch", "password_weak"} {
		if !i18n.Has("error." + code) {
			t.Errorf("no message for error code %s", code)
		}
	}
	for _, role := range []string{"candidate", "invigilator", "reviewer", "admin"} {
		for _, k := range []string{"role." + role, "home." + role + ".title", "home." + role + ".coming"} {
			if !i18n.Has(k) {
				t.Errorf("missing %s", k)
			}
		}
	}
	for _, err := range store.AllErrors() {
		if !i18n.Has("error." + err.Code()) {
			t.Errorf("no message for error %s (%v)", err.Code(), err)
		}
	}
	for _, key := range []string{"check.browser.mobile", "check.browser.unsupported", "check.browser.old"} {
		if !i18n.Has(key) {
			t.Errorf("no fix text for %s", key)
		}
	}
	for kind := range proctor.DefaultRules {
		if !i18n.Has("flag." + kind) {
			t.Errorf("no reason text for flag kind %s", kind)
		}
	}
	for _, prefix := range []string{"cert.component.", "cert.state.", "cert.reg.", "cert.status.", "cert.fee.", "cert.edu."} {
		var want []string
		switch prefix {
		case "cert.component.":
			want = []string{string(exam.Theory), string(exam.Practical), string(exam.Review)}
		case "cert.state.":
			want = []string{certify.StatePending, certify.StatePassed, certify.StateRetake, certify.StateExhausted}
		case "cert.reg.":
			want = []string{certify.RegOpen, certify.RegPassed, certify.RegClosed}
		case "cert.status.":
			want = []string{certify.Valid, certify.Revoked}
		case "cert.fee.":
			want = []string{certify.ItemRegistration, certify.ItemRetake}
		case "cert.edu.":
			want = certify.Educations
		}
		for _, w := range want {
			if !i18n.Has(prefix + w) {
				t.Errorf("missing %s%s", prefix, w)
			}
		}
	}
	// Every rule of the rules screen has a label (and the programme's rules a hint).
	var rules map[string]any
	b, _ := json.Marshal(certify.Policy{})
	json.Unmarshal(b, &rules)
	for rule := range rules {
		for _, k := range []string{"cert.rule." + rule, "cert.rule." + rule + ".hint"} {
			if !i18n.Has(k) {
				t.Errorf("missing %s", k)
			}
		}
	}
	b, _ = json.Marshal(certify.LevelSettings{})
	rules = nil
	json.Unmarshal(b, &rules)
	for rule := range rules {
		if !i18n.Has("cert.rule." + rule) {
			t.Errorf("missing cert.rule.%s", rule)
		}
	}
	if !i18n.Has("error." + exam.ErrInvalidImport.Code()) {
		t.Error("no message for invalid_import")
	}
	if got := T("error.too_many_attempts", "minutes", "7"); !strings.Contains(got.Zh, "7 分钟") || !strings.Contains(got.En, "7 minutes") {
		t.Errorf("placeholder not filled: %+v", got)
	}
}
