package notify

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/i18n"
)

// Every kind of message renders with no placeholder left when it is given
// the parameters its texts use.
func TestRenderEveryKind(t *testing.T) {
	subjectKey := regexp.MustCompile(`^mail\.([a-z_]+)\.subject$`)
	placeholder := regexp.MustCompile(`\{([a-z_]+)\}`)
	kinds := map[string]bool{}
	i18n.Keys(func(key string, _ i18n.Text) {
		if m := subjectKey.FindStringSubmatch(key); m != nil {
			kinds[m[1]] = true
		}
	})
	if len(kinds) < 10 {
		t.Fatalf("only %d kinds in the dictionary", len(kinds))
	}
	for kind := range kinds {
		params := map[string]string{}
		for _, part := range []string{"subject", "text", "sms"} {
			txt := i18n.T("mail." + kind + "." + part)
			for _, m := range placeholder.FindAllStringSubmatch(txt.Zh+txt.En, -1) {
				params[m[1]] = "«" + m[1] + "»"
			}
		}
		subject, text, html, sms, err := Render(kind, params)
		if err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		for name, s := range map[string]string{"subject": subject, "text": text, "html": html, "sms": sms} {
			if s == "" || strings.Contains(s, "{") {
				t.Errorf("%s %s: empty or a placeholder left: %q", kind, name, s)
			}
		}
		if !strings.Contains(text, "\n\n-- \n"+i18n.T("mail.greeting_footer").Zh) {
			t.Errorf("%s: no footer in the text", kind)
		}
	}
	if _, _, _, _, err := Render("no_such_kind", nil); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("unknown kind: %v", err)
	}
}

// The HTML escapes the parameters and makes only http and https URLs links.
func TestRenderHTML(t *testing.T) {
	_, text, html, _, err := Render("admission_refused", map[string]string{
		"name": "<b>Tom</b> & co", "programme": "HSK", "exam": "HSK 5", "session_time": "2026-03-01 09:00 (UTC+8)",
		"reason":    `javascript:alert(1) <script>x</script> see https://exam.example.test/help?a=1&b=2.`,
		"login_url": "https://exam.example.test/login",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<b>", "<script>", `href="javascript`} {
		if strings.Contains(html, bad) {
			t.Errorf("HTML holds %q:\n%s", bad, html)
		}
	}
	for _, want := range []string{"&lt;b&gt;Tom&lt;/b&gt; &amp; co",
		`<a href="https://exam.example.test/login">https://exam.example.test/login</a>`,
		`<a href="https://exam.example.test/help?a=1&amp;b=2">https://exam.example.test/help?a=1&amp;b=2</a>.`} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q:\n%s", want, html)
		}
	}
	if !strings.Contains(text, "<b>Tom</b> & co") {
		t.Errorf("plain text is escaped:\n%s", text)
	}
}

// Calendar texts are escaped and long lines folded at 75 octets, never
// inside a character, with CRLF line ends.
func TestICS(t *testing.T) {
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, store.ExamZone)
	e := store.NoticeEvent{UID: "s1@examhall", Start: start, End: start.Add(2 * time.Hour),
		Summary:  "汉语水平考试（HSK）五级, 第一部分; a\\b\nsecond line, and some more words to pass the limit",
		Location: "线上考场 A101, 第二楼"}
	b := string(ICS(e, time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)))
	if !strings.HasSuffix(b, "END:VCALENDAR\r\n") || strings.Count(b, "\n") != strings.Count(b, "\r\n") {
		t.Fatalf("not CRLF-terminated lines:\n%q", b)
	}
	folded := false
	for _, line := range strings.Split(strings.TrimSuffix(b, "\r\n"), "\r\n") {
		if len(line) > 75 || !utf8.ValidString(line) {
			t.Errorf("line of %d octets or split inside a character: %q", len(line), line)
		}
		folded = folded || strings.HasPrefix(line, " ")
	}
	if !folded {
		t.Error("no line was folded")
	}
	unfolded := strings.ReplaceAll(b, "\r\n ", "")
	for _, want := range []string{
		"\r\nMETHOD:REQUEST\r\n", "\r\nPRODID:-//examhall//notify//EN\r\n", "\r\nUID:s1@examhall\r\n",
		"\r\nDTSTAMP:20260201T000000Z\r\n", "\r\nDTSTART:20260301T010000Z\r\n", "\r\nDTEND:20260301T030000Z\r\n",
		"\r\nSUMMARY:汉语水平考试（HSK）五级\\, 第一部分\\; a\\\\b\\nsecond line\\, and some more words to pass the limit\r\n",
		"\r\nLOCATION:线上考场 A101\\, 第二楼\r\n",
	} {
		if !strings.Contains(unfolded, want) {
			t.Errorf("calendar lacks %q:\n%s", want, unfolded)
		}
	}
}

func TestFold(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int // octets of each line, without CRLF
	}{
		{strings.Repeat("a", 75), []int{75}},
		{strings.Repeat("a", 76), []int{75, 2}},
		{strings.Repeat("a", 160), []int{75, 75, 12}},
		{strings.Repeat("考", 30), []int{75, 16}}, // 90 octets: 25 characters, then a space and 5
	} {
		var got []int
		for _, l := range strings.Split(strings.TrimSuffix(fold(tc.in), "\r\n"), "\r\n") {
			got = append(got, len(l))
		}
		if len(got) != len(tc.want) {
			t.Errorf("fold of %d octets: lines %v, want %v", len(tc.in), got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("fold of %d octets: lines %v, want %v", len(tc.in), got, tc.want)
				break
			}
		}
		if strings.ReplaceAll(fold(tc.in), "\r\n ", "") != tc.in+"\r\n" {
			t.Errorf("unfolding does not give back %q", tc.in)
		}
	}
}

// Each error a person may see has its message in the dictionary.
func TestErrorMessages(t *testing.T) {
	for _, err := range []*store.Error{ErrLinkUsed, ErrLinkExpired, ErrLinkUnknown, ErrNoMessage, ErrNotResendable} {
		if !i18n.Has("error." + err.Code()) {
			t.Errorf("no message for %s", err.Code())
		}
	}
}

// DirMailer keeps one .eml per message, whatever the number of tries.
func TestDirMailer(t *testing.T) {
	dir := t.TempDir()
	d := DirMailer{Dir: dir}
	m := Mail{To: "a@example.test", Subject: "考试 / Exam", Text: "t", HTML: "<p>t</p>", MessageID: "X1@examhall",
		ICS: ICS(store.NoticeEvent{UID: "u", Start: time.Now(), End: time.Now()}, time.Now())}
	for range 2 {
		if err := d.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 || filepath.Base(files[0]) != "X1@examhall.eml" {
		t.Fatalf("files %v", files)
	}
	b, _ := os.ReadFile(files[0])
	p := parseMail(t, b)
	if p.Subject != m.Subject || p.Text != "t" || p.HTML != "<p>t</p>" || len(p.Attachments) != 1 || p.Header.Get("Message-Id") != "<X1@examhall>" {
		t.Errorf("mail read back: %+v", p)
	}
	if err := d.Send(context.Background(), Mail{To: "not an address"}); !errors.Is(err, ErrRefused) {
		t.Errorf("bad address: %v", err)
	}
}
