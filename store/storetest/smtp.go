package storetest

import (
	"bytes"
	"fmt"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// SMTPServer is a real mail server on loopback (Debian's aiosmtpd) that
// keeps what it receives in a Maildir.
type SMTPServer struct {
	t    testing.TB
	Port int
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// NewSMTP starts an SMTP server on a free loopback port for the test; the
// test is skipped when aiosmtpd is not installed.
func NewSMTP(t testing.TB) *SMTPServer {
	t.Helper()
	if out, err := exec.Command("/usr/bin/python3", "-c", "import aiosmtpd.handlers").CombinedOutput(); err != nil {
		t.Skipf("aiosmtpd is not installed (apt-get install python3-aiosmtpd; .ci/run does it): %v %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &SMTPServer{t: t, Port: port, Dir: filepath.Join(t.TempDir(), "maildir")}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server as examhall's --smtp-url names it.
func (s *SMTPServer) URL() string {
	return fmt.Sprintf("smtp://127.0.0.1:%d?tls=none&from=exams@examhall.test", s.Port)
}

// Start starts the server (again, after Stop) on its port.
func (s *SMTPServer) Start() {
	s.t.Helper()
	s.cmd = exec.Command("/usr/bin/python3", "-m", "aiosmtpd", "-n", "-l", fmt.Sprintf("127.0.0.1:%d", s.Port), "-c", "aiosmtpd.handlers.Mailbox", s.Dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	for range 200 {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.t.Fatal("aiosmtpd did not listen within 5 s")
}

// Stop stops the server; what it received stays in Dir.
func (s *SMTPServer) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
		s.cmd = nil
	}
}

// Mails are the messages received so far.
func (s *SMTPServer) Mails() []*mail.Message {
	s.t.Helper()
	names, _ := filepath.Glob(filepath.Join(s.Dir, "new", "*"))
	var out []*mail.Message
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			s.t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(b))
		if err != nil {
			s.t.Fatalf("%s: %v", n, err)
		}
		out = append(out, m)
	}
	return out
}
