package notify

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/examhall/examhall/store"
)

// ICS is a calendar (RFC 5545) holding one event, to attach to a mail:
// times in UTC, texts escaped, lines folded at 75 octets, CRLF line ends.
// now is its DTSTAMP.
func ICS(e store.NoticeEvent, now time.Time) []byte {
	const stamp = "20060102T150405Z"
	lines := []string{
		"BEGIN:VCALENDAR",
		"VERSION:2.0",
		"PRODID:-//examhall//notify//EN",
		"CALSCALE:GREGORIAN",
		"METHOD:REQUEST",
		"BEGIN:VEVENT",
		"UID:" + icsText(e.UID),
		"DTSTAMP:" + now.UTC().Format(stamp),
		"DTSTART:" + e.Start.UTC().Format(stamp),
		"DTEND:" + e.End.UTC().Format(stamp),
		"SUMMARY:" + icsText(e.Summary),
	}
	if e.Location != "" {
		lines = append(lines, "LOCATION:"+icsText(e.Location))
	}
	lines = append(lines, "END:VEVENT", "END:VCALENDAR")
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(fold(l))
	}
	return []byte(b.String())
}

// icsText escapes a TEXT value.
var icsText = strings.NewReplacer(`\`, `\\`, ";", `\;`, ",", `\,`, "\r\n", `\n`, "\n", `\n`, "\r", `\n`).Replace

// fold ends a content line with CRLF, breaking it into lines of at most 75
// octets, each continuation starting with a space, never inside a UTF-8
// character.
func fold(line string) string {
	var b strings.Builder
	limit := 75
	for len(line) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		b.WriteString(line[:cut])
		b.WriteString("\r\n ")
		line = line[cut:]
		limit = 74 // the leading space counts
	}
	b.WriteString(line)
	b.WriteString("\r\n")
	return b.String()
}
