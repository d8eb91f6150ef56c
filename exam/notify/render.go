package notify

import (
	"fmt"
	"html"
	"regexp"
	"strings"

	"github.com/examhall/examhall/store/i18n"
)

// Render fills the texts of a kind of message ("mail.<kind>.subject",
// ".text" and ".sms" in the dictionary) with params, Chinese first and
// English after: the subject on one line, the plain text and the HTML with
// the footer, the SMS on one line. Params are plain text; the HTML escapes
// them and makes http and https URLs clickable. A kind without a subject
// or a text is an error; one without an SMS text gives an empty sms.
func Render(kind string, params map[string]string) (subject, text, html, sms string, err error) {
	key := "mail." + kind + "."
	if !i18n.Has(key+"subject") || !i18n.Has(key+"text") {
		return "", "", "", "", fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
	pairs := make([]string, 0, 2*len(params))
	for k, v := range params {
		pairs = append(pairs, k, v)
	}
	body := i18n.T(key+"text", pairs...)
	footer := i18n.T("mail.greeting_footer")
	subject = i18n.T(key+"subject", pairs...).String()
	text = body.Zh + "\n\n" + body.En + "\n\n-- \n" + footer.String()
	html = htmlBody(body, footer)
	if i18n.Has(key + "sms") {
		sms = i18n.T(key+"sms", pairs...).String()
	}
	return subject, text, html, sms, nil
}

// htmlBody is the HTML version of a text: each language in its own block,
// one paragraph per blank-line-separated part, the footer set apart.
func htmlBody(body, footer i18n.Text) string {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head><body>\n")
	for i, part := range []struct{ lang, text string }{{"zh", body.Zh}, {"en", body.En}} {
		if i > 0 {
			b.WriteString("<hr>\n")
		}
		b.WriteString(`<div lang="` + part.lang + `">` + "\n")
		for _, p := range strings.Split(part.text, "\n\n") {
			b.WriteString("<p>" + strings.ReplaceAll(linkify(p), "\n", "<br>\n") + "</p>\n")
		}
		b.WriteString("</div>\n")
	}
	b.WriteString(`<hr>` + "\n" + `<p style="color:#666;font-size:small">` + linkify(footer.Zh) + "<br>\n" + linkify(footer.En) + "</p>\n")
	b.WriteString("</body></html>\n")
	return b.String()
}

// urlPattern finds web addresses in a text; it stops at white space and at
// the Chinese punctuation that may follow an address.
var urlPattern = regexp.MustCompile(`https?://[^\s<>"'，。；：、）]+`)

// linkify escapes s for HTML and makes its http and https URLs links.
func linkify(s string) string {
	var b strings.Builder
	last := 0
	for _, m := range urlPattern.FindAllStringIndex(s, -1) {
		u := strings.TrimRight(s[m[0]:m[1]], ".,;:!?)")
		end := m[0] + len(u)
		b.WriteString(html.EscapeString(s[last:m[0]]))
		e := html.EscapeString(u)
		b.WriteString(`<a href="` + e + `">` + e + `</a>`)
		last = end
	}
	b.WriteString(html.EscapeString(s[last:]))
	return b.String()
}
