package frontend

import "github.com/examhall/examhall/store/i18n"

// Text is one user-facing string in both languages.
type Text = i18n.Text

// T looks up a dictionary entry (see package i18n).
func T(key string, pairs ...string) Text { return i18n.T(key, pairs...) }
