package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"strings"
	"testing"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

func jpegOf(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The steps before the exam over the candidate's API: each refuses bad input
// and changes nothing, records what was done, and the invigilator sees the
// identity still of their own candidates only.
func TestJourneySteps(t *testing.T) {
	forEachDB(t, 2, func(t *testing.T, e *examEnv) {
		e.db.Model(&store.ExamSession{}).Where("id = ?", e.session).Update("admission_mode", "manual")
		c0, c1 := e.login(e.cands[0]), e.login(e.cands[1])
		a0 := fmt.Sprintf("/api/attempts/%d", e.cands[0].attempt)
		readiness := func() exam.ReadinessView {
			code, out := call(t, e, c0, "GET", a0+"/readiness", nil)
			if code != 200 {
				t.Fatalf("readiness: %d %s", code, out)
			}
			var r struct{ Readiness exam.ReadinessView }
			json.Unmarshal(out, &r)
			return r.Readiness
		}
		if r := readiness(); r.State != exam.StateNotReady || len(r.Missing) != 5 {
			t.Fatalf("fresh readiness %+v", r)
		}
		steps := []struct {
			name, method, path string
			who                any // nil: candidate 0
			body               any
			status             int
			code               string
		}{
			{"another's attempt", "POST", a0 + "/rules", c1, map[string]string{"version": exam.RulesVersion}, 404, "no_attempt"},
			{"old rules", "POST", a0 + "/rules", nil, map[string]string{"version": "2020-1"}, 409, "rules_changed"},
			{"malformed", "POST", a0 + "/rules", nil, []byte("{"), 400, "bad_request"},
			{"rules", "POST", a0 + "/rules", nil, map[string]string{"version": exam.RulesVersion}, 200, ""},
			{"a PNG as the still", "POST", a0 + "/identity", nil, pngOf(t), 400, "bad_still"},
			{"a tiny still", "POST", a0 + "/identity", nil, jpegOf(t, 100, 80), 400, "bad_still"},
			{"an empty still", "POST", a0 + "/identity", nil, []byte{}, 400, "bad_still"},
			{"a huge still", "POST", a0 + "/identity", nil, bytes.Repeat([]byte{0xff}, 2<<20), 413, "too_large"},
			{"identity", "POST", a0 + "/identity", nil, jpegOf(t, 640, 480), 200, ""},
			{"set-up before the phone", "POST", a0 + "/setup", nil, map[string]any{"items": exam.SetupItems}, 409, "phone_first"},
			{"phone not sending", "POST", a0 + "/phone", nil, nil, 409, "phone_first"},
		}
		for _, s := range steps {
			hc := c0
			if s.who != nil {
				hc = c1
			}
			code, out := call(t, e, hc, s.method, s.path, s.body)
			if code != s.status || (s.code != "" && !strings.Contains(string(out), `"code":"`+s.code+`"`)) {
				t.Fatalf("%s: %d %s, want %d %s", s.name, code, out, s.status, s.code)
			}
		}
		r := readiness()
		if _, ok := r.Done[exam.StepRules]; !ok || r.Identity == nil || r.Identity.Width != 640 {
			t.Fatalf("after rules and identity: %+v", r)
		}
		// Set-up needs the phone and every item of the checklist.
		if err := e.engine.RecordPhone(t.Context(), e.cands[0].attempt, true); err != nil {
			t.Fatal(err)
		}
		code, out := call(t, e, c0, "POST", a0+"/setup", map[string]any{"items": exam.SetupItems[:3]})
		if code != 400 || !strings.Contains(string(out), "alarms") {
			t.Fatalf("set-up with items missing: %d %s", code, out)
		}
		if code, out := call(t, e, c0, "POST", a0+"/setup", map[string]any{"items": exam.SetupItems}); code != 200 {
			t.Fatalf("set-up: %d %s", code, out)
		}

		// The still: its candidate, their invigilator and reviewers, nobody else.
		still := fmt.Sprintf("/api/proctor/attempts/%d/identity", e.cands[0].attempt)
		for _, who := range []struct {
			name   string
			c      cand
			status int
		}{{"responsible invigilator", e.invA, 200}, {"reviewer", e.reviewer, 200}, {"invigilator of another room", e.invD, 403}, {"candidate", e.cands[1], 403}} {
			code, out := call(t, e, e.login(who.c), "GET", still, nil)
			if code != who.status || (code == 200 && !bytes.Equal(out, jpegOf(t, 640, 480))) {
				t.Fatalf("%s reads the still: %d", who.name, code)
			}
		}
		if code, _ := call(t, e, c1, "GET", a0+"/identity", nil); code != 404 {
			t.Fatalf("another candidate reads the still: %d", code)
		}

		// The registered photo: filed by an admin, seen by the invigilator.
		admin := e.login(e.admin)
		photoPath := fmt.Sprintf("/api/admin/users/%d/photo", e.cands[0].id)
		for _, p := range []struct {
			name   string
			path   string
			body   []byte
			status int
		}{
			{"not a candidate", fmt.Sprintf("/api/admin/users/%d/photo", e.invA.id), jpegOf(t, 300, 400), 404},
			{"not a JPEG", photoPath, pngOf(t), 400},
			{"the photo", photoPath, jpegOf(t, 300, 400), 200},
		} {
			if code, out := call(t, e, admin, "PUT", p.path, p.body); code != p.status {
				t.Fatalf("%s: %d %s", p.name, code, out)
			}
		}
		if code, _ := call(t, e, e.login(e.invA), "PUT", photoPath, jpegOf(t, 300, 400)); code != 403 {
			t.Fatalf("an invigilator files a photo: %d", code)
		}
		photo := fmt.Sprintf("/api/proctor/attempts/%d/photo", e.cands[0].attempt)
		if code, out := call(t, e, e.login(e.invA), "GET", photo, nil); code != 200 || !bytes.Equal(out, jpegOf(t, 300, 400)) {
			t.Fatalf("the invigilator reads the photo: %d", code)
		}
		if code, _ := call(t, e, e.login(e.invD), "GET", photo, nil); code != 403 {
			t.Fatalf("another room's invigilator reads the photo: %d", code)
		}
		if code, out := call(t, e, e.login(e.reviewer), "GET", photo, nil); code != 200 || !bytes.Equal(out, jpegOf(t, 300, 400)) {
			t.Fatalf("a reviewer reads the photo: %d", code)
		}
		if r := readiness(); !r.Photo {
			t.Fatal("readiness does not say a photo is on file")
		}

		// Admitting the room admits the ready candidate only.
		invA := e.login(e.invA)
		if code, out := call(t, e, e.login(e.invD), "POST", fmt.Sprintf("/api/proctor/rooms/%d/admit-ready", e.room), nil); code != 403 {
			t.Fatalf("another room's invigilator admits: %d %s", code, out)
		}
		// Device check is still missing: nobody is ready.
		if code, out := call(t, e, invA, "POST", fmt.Sprintf("/api/proctor/rooms/%d/admit-ready", e.room), nil); code != 200 || !strings.Contains(string(out), `"admitted":0`) {
			t.Fatalf("admit ready with none ready: %d %s", code, out)
		}
		if err := e.engine.RecordStep(t.Context(), e.cands[0].attempt, exam.StepDevice, exam.DeviceCheck{Passed: true}); err != nil {
			t.Fatal(err)
		}
		if r := readiness(); r.State != exam.StateReady {
			t.Fatalf("every step done: %s", r.State)
		}
		if code, out := call(t, e, invA, "POST", fmt.Sprintf("/api/proctor/rooms/%d/admit-ready", e.room), nil); code != 200 || !strings.Contains(string(out), `"admitted":1`) {
			t.Fatalf("admit ready: %d %s", code, out)
		}
		if r := readiness(); r.State != exam.StateAdmitted {
			t.Fatalf("after admitting the room: %s", r.State)
		}
		var other exam.ReadinessView
		views, _ := e.engine.Readiness(t.Context(), []int64{e.cands[1].attempt})
		other = *views[e.cands[1].attempt]
		if other.State != exam.StateNotReady {
			t.Fatalf("the other candidate: %s", other.State)
		}
		// Each step is audited as the candidate's act, with the address of
		// the request that took it (the phone step and the device check here are recorded without one).
		var audits []store.AuditEvent
		e.db.Where("actor_id = ? AND action <> 'login'", e.cands[0].id).Order("id").Find(&audits)
		var got []string
		for _, a := range audits {
			got = append(got, a.Action+"@"+a.IP)
		}
		if want := "rules_accepted@127.0.0.1,identity_still@127.0.0.1,phone_live@,setup_confirmed@127.0.0.1,device_check@"; strings.Join(got, ",") != want {
			t.Fatalf("audit %s, want %s", strings.Join(got, ","), want)
		}
	})
}

func pngOf(t *testing.T) []byte {
	var b bytes.Buffer
	png.Encode(&b, image.NewGray(image.Rect(0, 0, 640, 480)))
	return b.Bytes()
}
