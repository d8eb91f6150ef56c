package frontend

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/examhall/examhall/store"
)

// Every kind of domain error has its status, and a wrapped error keeps its
// code and status and shows its particulars.
func TestDomainErrorsMapToStatuses(t *testing.T) {
	for k := store.Invalid; k <= store.Internal; k++ {
		if kindStatus[k] == 0 {
			t.Errorf("kind %d has no HTTP status", k)
		}
	}
	sentinel := store.NewError("test", store.Gone, "pairing_expired", "gone")
	pe := publicError(fmt.Errorf("%w: after 10 minutes", sentinel))
	if pe.Status != http.StatusGone || pe.Code != "pairing_expired" || pe.Detail != "test: gone: after 10 minutes" {
		t.Fatalf("%+v", pe)
	}
	if pe := publicError(sentinel); pe.Detail != "" {
		t.Fatalf("a bare sentinel has particulars: %+v", pe)
	}
}
