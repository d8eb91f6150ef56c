package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/examhall/examhall/store"
)

// The journey before the exam in Firefox ESR (puppeteer-core over WebDriver
// BiDi, frontend/browsertest/firefox/journey.mjs): device check with the fake
// camera and a test publish, rules, identity photo, phone pairing, set-up,
// the lobby; the invigilator admits the candidate and the first question
// appears.
func TestJourneyInFirefox(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	dir := firefoxHarness(t)
	e := newExamEnv(t, "sqlite", 1)
	e.db.Model(&store.ExamSession{}).Where("id = ?", e.session).Update("admission_mode", "manual")
	cd := e.cands[0]
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "journey.mjs", e.srv.URL, cd.ticket, cd.password)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var said []string
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		said = append(said, lines.Text())
		if lines.Text() == "ready" {
			code, body := call(t, e, e.login(e.invA), "POST", fmt.Sprintf("/api/proctor/attempts/%d/admit", cd.attempt), map[string]bool{})
			if code != 200 {
				t.Errorf("admitting the Firefox candidate: %d %s", code, body)
			}
		}
	}
	if err := cmd.Wait(); err != nil || strings.Join(said, ",") != "ready,started" {
		t.Fatalf("Firefox journey: %v, said %v\n%s", err, said, stderr.String())
	}
	var steps []store.ReadinessStep
	e.db.Where("attempt_id = ?", cd.attempt).Order("step").Find(&steps)
	var names []string
	for _, s := range steps {
		names = append(names, s.Step)
		if s.Step == "device_check" && !strings.Contains(s.Detail, `"name":"firefox"`) {
			t.Errorf("the device check did not see Firefox: %s", s.Detail)
		}
	}
	if got := strings.Join(names, ","); got != "admitted,device_check,identity,phone,rules,setup" {
		t.Fatalf("steps recorded: %s", got)
	}
	if a := e.attempt(cd.attempt); a.Status != "in_progress" {
		t.Fatalf("attempt %s after the first question showed", a.Status)
	}
}

// firefoxHarness is the directory of the Firefox scripts
// (frontend/browsertest/firefox); it skips the test when Firefox ESR or the
// scripts' packages are not installed.
func firefoxHarness(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("../../../frontend/browsertest/firefox")
	for _, need := range []struct{ path, how string }{
		{"/usr/bin/firefox-esr", "apt-get install firefox-esr"},
		{filepath.Join(dir, "node_modules/puppeteer-core"), "make test (it runs npm ci in frontend/browsertest/firefox)"},
	} {
		if _, err := os.Stat(need.path); err != nil {
			t.Skipf("%s is missing: %s; .ci/run does it", need.path, need.how)
		}
	}
	return dir
}
