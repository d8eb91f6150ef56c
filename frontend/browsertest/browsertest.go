// Package browsertest starts Debian's Chromium headless for end-to-end
// tests, with a fake camera and microphone and WebRTC allowed on loopback.
package browsertest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path finds Chromium, or skips the test saying how to install it.
func Path(t testing.TB) string {
	for _, p := range []string{os.Getenv("EXAMHALL_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	t.Skip("browser test skipped: Chromium is not installed (apt-get install chromium; .ci/run does it)")
	return ""
}

// New starts a fresh headless Chromium and returns a tab context, closed
// when the test ends. extra adds or overrides flags.
func New(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-dev-shm-usage", true), // containers' /dev/shm may be small
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	out := &tail{}
	opts = append(opts, extra...)
	opts = append(opts, chromedp.CombinedOutput(out))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelC()
		cancelA()
		if t.Failed() {
			t.Logf("Chromium's last output:\n%s", out)
		}
	})
	// Start the browser now, so its start-up is not charged to the first step.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Start starts a fresh Chromium, runs prepare (may be nil) and the
// actions, and returns the tab. Should Chromium itself crash on the way
// (CI saw one segmentation fault in many thousand starts), its output is
// logged and a fresh browser tries once more; any other error fails the
// test.
func Start(t testing.TB, what string, extra []chromedp.ExecAllocatorOption, prepare func(context.Context) error, actions ...chromedp.Action[chromedp.Void]) context.Context {
	t.Helper()
	for try := 1; ; try++ {
		ctx := New(t, extra...)
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := error(nil)
		if prepare != nil {
			err = prepare(c)
		}
		if err == nil {
			err = chromedp.Do(c, actions...)
		}
		cancel()
		if err == nil {
			return ctx
		}
		if try == 1 && strings.Contains(err.Error(), "browser process exited") {
			t.Logf("%s: Chromium crashed (%v); starting a fresh one", what, err)
			continue
		}
		t.Fatalf("%s: %v", what, err)
	}
}

// tail keeps the last 16 KiB written to it.
type tail struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *tail) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if extra := w.b.Len() - 16<<10; extra > 0 {
		w.b.Next(extra)
	}
	return len(p), nil
}

func (w *tail) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// Run runs actions with a deadline, failing the test on error.
func Run(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression in the page and returns its value.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// WaitTrue polls a JavaScript expression until it is true. A page that
// navigates meanwhile (the expression may click a link) is polled again.
func WaitTrue(t testing.TB, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		_, err := chromedp.Run(c, chromedp.Poll[bool](expr))
		if err == nil {
			return
		}
		if c.Err() != nil || !strings.Contains(err.Error(), "navigated") && !strings.Contains(err.Error(), "context with specified id") {
			t.Fatalf("%s (%s): %v", what, expr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Screenshot saves the page as name.png in $EXAMHALL_SCREENSHOTS, when set,
// so a person can look at what a test saw.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	dir := os.Getenv("EXAMHALL_SCREENSHOTS")
	if dir == "" {
		return
	}
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	os.WriteFile(filepath.Join(dir, name+".png"), b, 0o644)
}
