package exam

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/examhall/examhall/store"
)

// Kind is the type of a question.
type Kind string

// The question types.
const (
	Single    Kind = "single"    // 单选题
	Multiple  Kind = "multiple"  // 多选题
	TrueFalse Kind = "truefalse" // 判断题
)

// Question is a bank item as it is imported and exported. Answer holds the
// 0-based indexes of the correct options.
type Question struct {
	Kind          Kind     `json:"kind"`
	Stem          string   `json:"stem"`
	Options       []string `json:"options"`
	Answer        []int    `json:"answer"`
	Tags          []string `json:"tags"`
	Difficulty    int      `json:"difficulty"`
	PartialCredit bool     `json:"partial_credit,omitempty"`
	Explanation   string   `json:"explanation,omitempty"`
	// Pool is PoolFormal (the default) or PoolPractice.
	Pool string `json:"pool,omitempty"`
}

// Question pools: a formal exam draws only formal questions and a mock test
// only practice ones, so no formal question is ever seen before the exam.
const (
	PoolFormal   = "formal"
	PoolPractice = "practice"
)

// poolOf is the pool an exam of this kind draws from.
func poolOf(kind string) string {
	if kind == KindMock {
		return PoolPractice
	}
	return PoolFormal
}

// TrueFalseOptions are the fixed options of a true/false question.
var TrueFalseOptions = []string{"正确", "错误"}

// imageRef is how a stem or option shows an uploaded image.
var imageRef = regexp.MustCompile(`\[img:[0-9a-f]{64}\.(?:png|jpg|gif|webp)\]`)

// LineError is one problem in an import: the item (1-based), the field and why.
type LineError struct {
	Line   int    `json:"line"`
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e LineError) Error() string { return fmt.Sprintf("line %d, %s: %s", e.Line, e.Field, e.Reason) }

// Validate checks one question, returning every problem found.
func (q *Question) Validate(line int) []LineError {
	var errs []LineError
	bad := func(field, reason string) { errs = append(errs, LineError{line, field, reason}) }
	switch q.Pool {
	case "":
		q.Pool = PoolFormal
	case PoolFormal, PoolPractice:
	default:
		bad("pool", "use formal or practice")
	}
	if strings.TrimSpace(q.Stem) == "" {
		bad("stem", "empty")
	}
	switch q.Kind {
	case Single:
		if len(q.Options) < 2 || len(q.Options) > 8 {
			bad("options", "a single-choice question has 2 to 8 options")
		}
		if len(q.Answer) != 1 {
			bad("answer", "a single-choice question has exactly one correct option")
		}
	case Multiple:
		if len(q.Options) < 3 || len(q.Options) > 8 {
			bad("options", "a multiple-choice question has 3 to 8 options")
		}
		if len(q.Answer) < 2 {
			bad("answer", "a multiple-choice question has at least two correct options")
		}
	case TrueFalse:
		if !slices.Equal(q.Options, TrueFalseOptions) {
			bad("options", `a true/false question has the options ["正确", "错误"]`)
		}
		if len(q.Answer) != 1 {
			bad("answer", "a true/false question has exactly one correct option")
		}
	default:
		bad("kind", fmt.Sprintf("%q is not single, multiple or truefalse", q.Kind))
	}
	for i, o := range q.Options {
		if strings.TrimSpace(o) == "" {
			bad("options", fmt.Sprintf("option %d is empty", i+1))
		}
	}
	seen := map[int]bool{}
	for _, a := range q.Answer {
		if a < 0 || a >= len(q.Options) {
			bad("answer", fmt.Sprintf("index %d is not an option", a))
		}
		if seen[a] {
			bad("answer", fmt.Sprintf("index %d appears twice", a))
		}
		seen[a] = true
	}
	if q.Difficulty < 1 || q.Difficulty > 3 {
		bad("difficulty", "must be 1, 2 or 3")
	}
	for i, text := range append([]string{q.Stem}, q.Options...) {
		field := "stem"
		if i > 0 {
			field = fmt.Sprintf("option %d", i)
		}
		if strings.Count(text, "[img:") != len(imageRef.FindAllString(text, -1)) {
			bad(field, "an image reference must be [img:<64 hex digits>.png|jpg|gif|webp], as the image upload gives it")
		}
	}
	return errs
}

// ParseBankJSON reads a JSON array of questions. Nothing is returned unless
// every item is valid; then every problem is listed.
func ParseBankJSON(data []byte) ([]Question, []LineError) {
	var qs []Question
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&qs); err != nil {
		return nil, []LineError{{0, "file", "not a JSON array of questions: " + err.Error()}}
	}
	var errs []LineError
	for i := range qs {
		errs = append(errs, qs[i].Validate(i+1)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return qs, nil
}

// ErrNotImage: a question image that is not a PNG, JPEG, GIF or WebP.
var ErrNotImage = store.NewError("exam", store.Unsupported, "not_image", "not a PNG, JPEG, GIF or WebP image")

// MaxImage is the largest question image, in bytes.
const MaxImage = 2 << 20

var imageTypes = map[string]string{"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}

// CheckImage judges a question image by its content, not its name, and
// gives the extension it is stored under.
func CheckImage(b []byte) (ext string, err error) {
	ext, ok := imageTypes[http.DetectContentType(b)]
	if !ok || len(b) == 0 {
		return "", ErrNotImage
	}
	return ext, nil
}
