package storetest

import (
	"context"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/examhall/examhall/store"
)

// S3Server is a real S3-compatible server (Versity's gateway on a
// directory) on loopback, for the tests of recordings in object storage.
type S3Server struct {
	t              testing.TB
	bin, dir, addr string
	Access, Secret string
	cmd            *exec.Cmd
}

// NewS3 starts an S3 server; the test skips, saying how to install it,
// when versitygw is not on PATH or in $(go env GOPATH)/bin.
func NewS3(t testing.TB) *S3Server {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, "go", "bin", "versitygw")
		if gp := os.Getenv("GOPATH"); gp != "" {
			bin = filepath.Join(gp, "bin", "versitygw")
		}
		if _, err := os.Stat(bin); err != nil {
			t.Skip("versitygw is not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0; .ci/run does it)")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &S3Server{t: t, bin: bin, dir: t.TempDir(), addr: addr, Access: "test" + rand.Text()[:8], Secret: rand.Text()}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the --blob-store URL of a bucket on the server.
func (s *S3Server) URL(bucket string) string {
	return "s3://" + bucket + "?endpoint=" + s.addr + "&secure=false&region=us-east-1"
}

// Open connects to a bucket on the server.
func (s *S3Server) Open(bucket string) *store.S3 {
	s.t.Helper()
	b, err := store.OpenS3(context.Background(), s.URL(bucket), s.Access, s.Secret)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// Start (re)starts the server on its address and directory, and waits
// until it answers.
func (s *S3Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", s.addr, "--access", s.Access, "--secret", s.Secret, "posix", s.dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	for wait := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(wait) {
			s.t.Fatalf("versitygw did not listen on %s", s.addr)
		}
	}
}

// Stop stops the server (its objects stay in its directory).
func (s *S3Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}
