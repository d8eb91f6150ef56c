package frontend

import (
	"bytes"
	"encoding/csv"
	"testing"
)

func TestSheetCellsAreNeverFormulas(t *testing.T) {
	var b bytes.Buffer
	w := sheetWriter{csv.NewWriter(&b)}
	w.Write([]string{`=HYPERLINK("http://x","y")`, "+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "张三", "", "95.5"})
	w.Flush()
	got, err := csv.NewReader(&b).Read()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`'=HYPERLINK("http://x","y")`, "'+1", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", "张三", "", "95.5"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("cell %d: %q, want %q", i, got[i], want[i])
		}
	}
}
