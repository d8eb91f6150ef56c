package exam

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// csvHeader is the column order of a question bank in CSV: the options in
// columns A–H (empty ones left out), the key as letters ("B", "ACD"), tags
// separated by "|".
// A last column "pool" (formal or practice; empty is formal) may follow,
// and the export writes it.
var csvHeader = []string{"kind", "stem", "A", "B", "C", "D", "E", "F", "G", "H", "answer", "tags", "difficulty", "partial_credit", "explanation", "pool"}

// csvHeaderV1 is the header before question pools, still read.
var csvHeaderV1 = csvHeader[:15]

const letters = "ABCDEFGH"

// ParseBankCSV reads a question bank in CSV. Nothing is returned unless
// every line is valid; then every problem is listed with its line number
// (the header is line 1).
func ParseBankCSV(r io.Reader) ([]Question, []LineError) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, []LineError{{0, "file", "not valid CSV: " + err.Error()}}
	}
	if len(rows) == 0 || (strings.Join(rows[0], ",") != strings.Join(csvHeader, ",") && strings.Join(rows[0], ",") != strings.Join(csvHeaderV1, ",")) {
		return nil, []LineError{{1, "header", "the first line must be: " + strings.Join(csvHeader, ",")}}
	}
	width := len(rows[0])
	var qs []Question
	var errs []LineError
	for i, row := range rows[1:] {
		line := i + 2
		if len(row) != width {
			errs = append(errs, LineError{line, "line", fmt.Sprintf("has %d fields, want %d", len(row), width)})
			continue
		}
		q := Question{Kind: Kind(strings.TrimSpace(row[0])), Stem: row[1], Explanation: row[14]}
		if width > 15 {
			q.Pool = strings.ToLower(strings.TrimSpace(row[15]))
		}
		for _, o := range row[2:10] {
			if o != "" {
				q.Options = append(q.Options, o)
			}
		}
		for _, c := range strings.ToUpper(strings.TrimSpace(row[10])) {
			idx := strings.IndexRune(letters, c)
			if idx < 0 {
				errs = append(errs, LineError{line, "answer", fmt.Sprintf("%q is not an option letter A–H", c)})
				continue
			}
			q.Answer = append(q.Answer, idx)
		}
		for _, t := range strings.Split(row[11], "|") {
			if t = strings.TrimSpace(t); t != "" {
				q.Tags = append(q.Tags, t)
			}
		}
		d, err := strconv.Atoi(strings.TrimSpace(row[12]))
		if err != nil {
			errs = append(errs, LineError{line, "difficulty", "not a number"})
		}
		q.Difficulty = d
		switch strings.ToLower(strings.TrimSpace(row[13])) {
		case "", "false", "0", "no":
		case "true", "1", "yes":
			q.PartialCredit = true
		default:
			errs = append(errs, LineError{line, "partial_credit", "use true or false"})
		}
		errs = append(errs, q.Validate(line)...)
		qs = append(qs, q)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return qs, nil
}

// WriteBankCSV writes questions in the CSV form ParseBankCSV reads.
func WriteBankCSV(w io.Writer, qs []Question) error {
	cw := csv.NewWriter(w)
	cw.Write(csvHeader)
	for _, q := range qs {
		row := make([]string, len(csvHeader))
		row[0], row[1] = string(q.Kind), q.Stem
		for i, o := range q.Options {
			row[2+i] = o
		}
		var key strings.Builder
		for _, a := range q.Answer {
			key.WriteByte(letters[a])
		}
		row[10] = key.String()
		row[11] = strings.Join(q.Tags, "|")
		row[12] = strconv.Itoa(q.Difficulty)
		row[13] = strconv.FormatBool(q.PartialCredit)
		row[14] = q.Explanation
		row[15] = cmp.Or(q.Pool, PoolFormal)
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}
