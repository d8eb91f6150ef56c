package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/examhall/examhall/store"
)

func TestParseConfig(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "dsn")
	os.WriteFile(secret, []byte("postgres://u:hunter2@db/examhall\n"), 0o600)
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(*Config) bool
		wantErr string
	}{
		{"defaults", nil, nil, func(c *Config) bool {
			return c.Addr == "127.0.0.1:8080" && c.DataDir == "./data" && c.Database == "" && c.Redis == "" && c.Candidates == 30 && c.ShutdownTimeout == 10*time.Second
		}, ""},
		{"flags", []string{"--addr", ":9000", "--candidates", "200", "--ice-servers", "stun:a:3478, turn:b:3478"}, nil, func(c *Config) bool {
			return c.Addr == ":9000" && c.Candidates == 200 && len(c.ICEServers) == 2 && c.ICEServers[1] == "turn:b:3478"
		}, ""},
		{"env", nil, map[string]string{"EXAMHALL_DATA_DIR": "/srv/x", "EXAMHALL_REDIS": "redis://127.0.0.1:6379/0"}, func(c *Config) bool {
			return c.DataDir == "/srv/x" && c.Redis == "redis://127.0.0.1:6379/0"
		}, ""},
		{"a switch needs no value", []string{"--ice-loopback"}, nil, func(c *Config) bool { return c.ICELoopback }, ""},
		{"flag beats env", []string{"--data-dir", "/a"}, map[string]string{"EXAMHALL_DATA_DIR": "/b"}, func(c *Config) bool { return c.DataDir == "/a" }, ""},
		{"secret from file", nil, map[string]string{"EXAMHALL_DATABASE_FILE": secret}, func(c *Config) bool {
			return c.Database == "postgres://u:hunter2@db/examhall"
		}, ""},
		{"bad addr", []string{"--addr", "8080"}, nil, nil, "addr from --addr = 8080: want host:port"},
		{"bad database is not echoed", nil, map[string]string{"EXAMHALL_DATABASE": "mysql://u:hunter2@x"}, nil, "database from EXAMHALL_DATABASE = (hidden)"},
		{"bad candidates", []string{"--candidates", "0"}, nil, nil, "want a number from 1 to 100000"},
		{"bad ice", []string{"--ice-servers", "http://x"}, nil, nil, "want stun:, turn: or turns:"},
		{"stray argument", []string{"extra"}, nil, nil, "unexpected argument"},
		{"trusted proxies", []string{"--trusted-proxies", "10.0.0.0/8, 192.0.2.7,::1"}, nil, func(c *Config) bool {
			return len(c.TrustedProxies) == 3 && c.TrustedProxies[1].String() == "192.0.2.7/32" && c.TrustedProxies[2].String() == "::1/128"
		}, ""},
		{"bad proxies", []string{"--trusted-proxies", "10.0.0.0/33"}, nil, nil, "want CIDRs"},
		{"a certificate without its key", []string{"--tls-cert", "c.pem"}, nil, nil, "go together"},
		{"both ways of https", []string{"--tls-cert", "c.pem", "--tls-key", "k.pem", "--acme-domain", "exam.example.org"}, nil, nil, "not both"},
		{"acme", []string{"--acme-domain", "exam.example.org, b.example.org"}, nil, func(c *Config) bool {
			return len(c.ACMEDomains) == 2 && c.https()
		}, ""},
		{"metrics token from file", nil, map[string]string{"EXAMHALL_METRICS_TOKEN_FILE": secret}, func(c *Config) bool {
			return c.MetricsToken == "postgres://u:hunter2@db/examhall"
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseConfig("demo", tt.args, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("err = %v, want %q (and no secret)", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Fatalf("config %+v, err %v", c, err)
			}
		})
	}
	if _, err := parseConfig("serve", []string{"--candidates", "5"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("serve accepted the demo-only --candidates flag")
	}
}

// startDemo runs `examhall demo` in-process and returns once it is listening.
func startDemo(t *testing.T, dir string, n string) (stop func() error, demo *DemoFile) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runCommand(ctx, []string{"demo", "--addr", "127.0.0.1:0", "--data-dir", dir, "--candidates", n, "--log-level", "warn"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "demo is running at") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if err != nil {
		cancel()
		t.Fatalf("demo did not start: %v / %v", err, <-done)
	}
	demo = &DemoFile{}
	if err := json.Unmarshal(b, demo); err != nil {
		t.Fatal(err)
	}
	return func() error { cancel(); return <-done }, demo
}

func login(t *testing.T, base, user, pw string) int {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(base + "/api/csrf")
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	body, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	req, _ := http.NewRequest("POST", base+"/api/login", strings.NewReader(string(body)))
	req.Header.Set("X-CSRF-Token", tok.CSRFToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// roomsOf logs in and counts the rooms the console offers.
func roomsOf(t *testing.T, base, user, pw string) int {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, _ := c.Get(base + "/api/csrf")
	var tok struct {
		CSRFToken string `json:"csrf_token"`
	}
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	body, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	req, _ := http.NewRequest("POST", base+"/api/login", strings.NewReader(string(body)))
	req.Header.Set("X-CSRF-Token", tok.CSRFToken)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("login %s: %v %v", user, resp, err)
	}
	resp, err := c.Get(base + "/api/proctor/rooms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct{ Rooms []json.RawMessage }
	json.NewDecoder(resp.Body).Decode(&r)
	return len(r.Rooms)
}

func TestDemoSeedsLoginsAndIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	stop, demo := startDemo(t, dir, "200")
	if len(demo.Candidates) != 200 || demo.SessionID == 0 || demo.Admin.Password == "" || len(demo.Reviewers) != 1 {
		t.Fatalf("demo.json: %d candidates, session %d", len(demo.Candidates), demo.SessionID)
	}
	rooms := map[string]int{}
	for _, c := range demo.Candidates {
		rooms[c.Room]++
	}
	invs := map[string]int{}
	for _, i := range demo.Invigilators {
		invs[i.Room]++
	}
	for r, n := range rooms {
		if n > 15 || invs[r] < 2 {
			t.Errorf("room %s: %d candidates, %d invigilators", r, n, invs[r])
		}
	}
	for _, who := range [][2]string{
		{demo.Candidates[0].Ticket, demo.Candidates[0].Password},
		{demo.Candidates[199].Ticket, demo.Candidates[199].Password},
		{demo.Admin.Username, demo.Admin.Password},
		{demo.Invigilators[0].Username, demo.Invigilators[0].Password},
		{demo.Reviewers[0].Username, demo.Reviewers[0].Password},
		{demo.Chief.Username, demo.Chief.Password},
	} {
		if code := login(t, demo.URL, who[0], who[1]); code != 200 {
			t.Errorf("login %s: %d", who[0], code)
		}
	}
	// The chief invigilator sees every room of the session.
	if n := roomsOf(t, demo.URL, demo.Chief.Username, demo.Chief.Password); n != len(rooms) {
		t.Errorf("the chief sees %d rooms of %d", n, len(rooms))
	}
	if n := roomsOf(t, demo.URL, demo.Invigilators[0].Username, demo.Invigilators[0].Password); n != 1 {
		t.Errorf("an invigilator sees %d rooms", n)
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// A second run on the same data dir keeps every account and password.
	stop, again := startDemo(t, dir, "200")
	defer stop()
	if again.SessionID != demo.SessionID || len(again.Candidates) != 200 || again.Candidates[5] != demo.Candidates[5] {
		t.Fatalf("second run changed the demo")
	}
	if code := login(t, again.URL, demo.Candidates[5].Ticket, demo.Candidates[5].Password); code != 200 {
		t.Errorf("login after restart: %d", code)
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the examhall binary once for the tests that run it.
func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "examhall-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "examhall")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// startBinary runs the binary and waits until it says it is listening.
func startBinary(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	out, _ := cmd.StdoutPipe()
	errs, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 100)
	scan := func(r io.Reader) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}
	go scan(out)
	go scan(errs)
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l := <-lines:
			if u, ok := strings.CutPrefix(l, "examhall demo is running at "); ok {
				return cmd, u
			}
			if i := strings.Index(l, "url="); i >= 0 && strings.Contains(l, "listening") {
				return cmd, strings.Fields(l[i+4:])[0]
			}
		case <-timeout:
			t.Fatalf("%v did not start listening", args)
		}
	}
}

// The real binary exits 0 within the shutdown timeout on SIGTERM.
func TestBinaryStopsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	cmd, url := startBinary(t, "demo", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--candidates", "30")
	resp, err := http.Get(url + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		t.Logf("stopped %v after SIGTERM", time.Since(start))
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("still running 10 s after SIGTERM")
	}
}

func TestMigrateCommand(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	if err := runCommand(context.Background(), []string{"migrate", "--data-dir", dir, "--log-level", "error"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), store.SchemaVersion()) {
		t.Fatalf("migrate said %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "examhall.db")); err != nil {
		t.Fatal(err)
	}
	if err := runCommand(context.Background(), []string{"frobnicate"}, io.Discard, io.Discard); err == nil {
		t.Fatal("unknown command accepted")
	}
}

func TestRetentionCommandIsADryRunUnlessApplied(t *testing.T) {
	dir := t.TempDir()
	if err := runCommand(context.Background(), []string{"migrate", "--data-dir", dir, "--log-level", "error"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := runCommand(context.Background(), []string{"retention", "--days", "30", "--data-dir", dir}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "0 recordings are past 30 days") || !strings.Contains(out.String(), "dry run") {
		t.Fatalf("retention said %q", out.String())
	}
	if err := runCommand(context.Background(), []string{"retention", "--days", "0", "--data-dir", dir}, io.Discard, io.Discard); err == nil {
		t.Fatal("--days 0 accepted")
	}
}

// Applied retention deletes an expired attempt's recordings and its face
// analysis stills, and nothing of an attempt still kept.
func TestRetentionDeletesStills(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if err := runCommand(ctx, []string{"migrate", "--data-dir", dir, "--log-level", "error"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, "", dir)
	if err != nil {
		t.Fatal(err)
	}
	p := &store.Programme{Code: "p", NameZh: "项目", NameEn: "P", Rules: "{}"}
	db.Create(p)
	ex := &store.Exam{ProgrammeID: p.ID, Code: "e", Kind: "formal", TitleZh: "理论", TitleEn: "Theory", DurationMinutes: 120, PassMark: 80, Blueprint: "{}", Policy: "{}", ProctorRules: "{}"}
	db.Create(ex)
	u := &store.User{Role: store.RoleCandidate, Username: "c", PasswordHash: "x", DisplayName: "考生"}
	db.Create(u)
	stills := func(id int64) string { return filepath.Join(dir, "stills", fmt.Sprint(id)) }
	mk := func(decidedDaysAgo int) int64 {
		a := &store.Attempt{ExamID: ex.ID, CandidateID: u.ID, Kind: "formal", Status: "submitted", Paper: "{}"}
		db.Create(a)
		db.Create(&store.AttemptReview{AttemptID: a.ID, Decision: "valid", DecidedBy: u.ID, DecidedAt: time.Now().AddDate(0, 0, -decidedDaysAgo)})
		path := filepath.Join(dir, "recordings", fmt.Sprint(a.ID), "pc.webm")
		os.MkdirAll(filepath.Dir(path), 0o750)
		os.WriteFile(path, []byte("webm"), 0o600)
		db.Create(&store.Recording{AttemptID: a.ID, Device: "pc", Connection: "c", Path: path, Codecs: "vp8", StartedAt: time.Now(), State: "closed"})
		os.MkdirAll(stills(a.ID), 0o750)
		os.WriteFile(filepath.Join(stills(a.ID), "1-pc-face_absent.jpg"), []byte{0xff, 0xd8, 0xff}, 0o600)
		return a.ID
	}
	old, recent := mk(100), mk(10)
	db.Close()
	var out strings.Builder
	if err := runCommand(ctx, []string{"retention", "--days", "90", "--apply", "--data-dir", dir}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "deleted the stills of 1 attempts") {
		t.Fatalf("retention said %q", out.String())
	}
	if _, err := os.Stat(stills(old)); !os.IsNotExist(err) {
		t.Fatal("the expired attempt's stills are still there")
	}
	if _, err := os.Stat(stills(recent)); err != nil {
		t.Fatal("a kept attempt's stills were deleted")
	}
}

// With --tls-cert and --tls-key the binary serves https (phones give the
// camera only to https pages), with HSTS and Secure cookies.
func TestBinaryServesHTTPS(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "exam room"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	_, url := startBinary(t, "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("url %s", url)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(url + "/api/csrf")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS over https")
	}
	for _, c := range resp.Cookies() {
		if !c.Secure {
			t.Errorf("cookie %s is not Secure", c.Name)
		}
	}
	// A wrong key fails at start with a clear error.
	out, err := exec.Command(binary(t), "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data2"), "--tls-cert", certFile, "--tls-key", certFile).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--tls-cert/--tls-key") {
		t.Fatalf("a wrong key: %v %s", err, out)
	}
}
