package frontend

import (
	"encoding/csv"
	"strings"
)

// sheetWriter writes CSV downloads meant for a spreadsheet. A cell that
// begins with = + - @ or a tab or carriage return would be read as a
// formula (a candidate may call themselves =HYPERLINK(...)), so it is
// written with a leading apostrophe, which spreadsheets show as text.
type sheetWriter struct{ *csv.Writer }

func (w sheetWriter) Write(row []string) error {
	safe := make([]string, len(row))
	for i, cell := range row {
		if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
			cell = "'" + cell
		}
		safe[i] = cell
	}
	return w.Writer.Write(safe)
}
