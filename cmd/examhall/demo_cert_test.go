package main

import (
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"

	"github.com/examhall/examhall/exam/certify"
)

// The demo carries the certificate programme: panel members with
// organisations, and every candidate's paid junior registration seated in
// the session.
func TestDemoSeedsCertificateProgramme(t *testing.T) {
	stop, demo := startDemo(t, t.TempDir(), "20")
	defer stop()
	if len(demo.Panel) != 3 {
		t.Fatalf("%d panel members, want 3", len(demo.Panel))
	}
	for _, p := range demo.Panel {
		if code := login(t, demo.URL, p.Username, p.Password); code != 200 {
			t.Fatalf("panel member %s cannot log in: %d", p.Username, code)
		}
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, _ := c.Get(demo.URL + "/api/csrf")
	var tok struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	body, _ := json.Marshal(map[string]string{"username": demo.Candidates[3].Ticket, "password": demo.Candidates[3].Password})
	req, _ := http.NewRequest("POST", demo.URL+"/api/login", strings.NewReader(string(body)))
	req.Header.Set("X-CSRF-Token", tok.CSRFToken)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("candidate login: %v", err)
	}
	resp, err := c.Get(demo.URL + "/api/cert/path")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var path struct{ Registrations []certify.RegistrationView }
	json.NewDecoder(resp.Body).Decode(&path)
	if len(path.Registrations) != 1 {
		t.Fatalf("%d registrations", len(path.Registrations))
	}
	r := path.Registrations[0]
	if r.LevelCode != "junior" || r.OwedCents != 0 || r.Organisation == "" || r.Name != demo.Candidates[3].Name ||
		r.Components[0].Sittings[0].Ticket != demo.Candidates[3].Ticket {
		t.Fatalf("demo registration: %+v", r)
	}
	if _, err := certify.CheckIDNumber(r.IDNumber); err != nil {
		t.Fatalf("demo ID number %s: %v", r.IDNumber, err)
	}
}
