// Package i18n is examhall's one dictionary of user-facing text: Chinese
// first, English beside it. The server's templates and messages and the
// pages' JavaScript (served as /static/i18n.json) all read it. It is kept in
// several files by area (i18n.json for the core, others beside it), merged
// into one namespace at start; a key defined twice stops the program.
package i18n

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
)

//go:embed *.json
var files embed.FS

// Text is one user-facing string in both languages.
type Text struct {
	Zh string `json:"zh"`
	En string `json:"en"`
}

// String renders both languages on one line, for logs and plain-text replies.
func (t Text) String() string { return t.Zh + " / " + t.En }

var dictionary, raw = func() (map[string]Text, []byte) {
	d := map[string]Text{}
	names, _ := fs.Glob(files, "*.json")
	for _, name := range names {
		b, _ := files.ReadFile(name)
		part := map[string]Text{}
		if err := json.Unmarshal(b, &part); err != nil {
			panic(fmt.Sprintf("i18n %s: %v", name, err))
		}
		for k, v := range part {
			if _, dup := d[k]; dup {
				panic(fmt.Sprintf("i18n %s: key %q is defined twice", name, k))
			}
			d[k] = v
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	return d, b
}()

// JSON is the whole dictionary, for the pages.
func JSON() []byte { return raw }

// Has reports whether key is in the dictionary.
func Has(key string) bool { _, ok := dictionary[key]; return ok }

// Keys calls f for every entry.
func Keys(f func(key string, t Text)) {
	for k, v := range dictionary {
		f(k, v)
	}
}

// T looks up key and fills {name} placeholders from pairs of name, value.
// An unknown key comes back as itself, so a missing entry is visible on the
// page and caught by the dictionary test.
func T(key string, pairs ...string) Text {
	t, ok := dictionary[key]
	if !ok {
		return Text{Zh: key, En: key}
	}
	if len(pairs) > 0 {
		r := make([]string, 0, len(pairs))
		for i := 0; i+1 < len(pairs); i += 2 {
			r = append(r, "{"+pairs[i]+"}", pairs[i+1])
		}
		rep := strings.NewReplacer(r...)
		t = Text{Zh: rep.Replace(t.Zh), En: rep.Replace(t.En)}
	}
	return t
}
