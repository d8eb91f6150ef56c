package frontend

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Text is one user-facing string in both languages: Chinese first, English beside it.
type Text struct {
	Zh string `json:"zh"`
	En string `json:"en"`
}

// String renders both languages on one line, for logs and plain-text replies.
func (t Text) String() string { return t.Zh + " / " + t.En }

// dictionary is static/i18n.json, the one dictionary every page and error
// message reads; the pages' JavaScript loads the same file.
var dictionary = func() map[string]Text {
	b, err := assets.ReadFile("static/i18n.json")
	if err != nil {
		panic(err)
	}
	d := map[string]Text{}
	if err := json.Unmarshal(b, &d); err != nil {
		panic(fmt.Sprintf("static/i18n.json: %v", err))
	}
	return d
}()

// T looks up key in the dictionary and fills {name} placeholders from pairs
// of name, value. An unknown key comes back as itself, so a missing entry is
// visible on the page and caught by the dictionary test.
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
