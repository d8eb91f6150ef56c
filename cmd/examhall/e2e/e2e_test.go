package e2e

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/examhall/examhall/frontend/browsertest"
)

// A candidate in real Chromium: logs in, answers, reloads and finds the
// answers, loses the network, answers on, comes back and sees everything
// acknowledged, then submits.
func TestExamPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newExamEnv(t, "sqlite", 1)
	cd := e.cands[0]
	ctx := browsertest.New(t)
	run := func(what string, a ...chromedp.Action[chromedp.Void]) { browsertest.Run(t, ctx, what, a...) }
	waitTrue := func(what, expr string) { browsertest.WaitTrue(t, ctx, what, expr, 20*time.Second) }

	run("log in",
		e.loginPage(cd),
		chromedp.WaitVisible("a[data-attempt]"),
		chromedp.Click("a[data-attempt]"),
		chromedp.WaitEnabled("#start"),
		chromedp.Click("#start"),
		chromedp.WaitVisible(".option"))

	run("answer two questions",
		chromedp.Click(".option[data-option]"),
		chromedp.KeyEvent(kb.ArrowRight),
		chromedp.KeyEvent("B"))
	waitTrue("both saved", `document.querySelector('#save').classList.contains('ok') && document.querySelectorAll("#grid .cell.answered").length === 2`)
	if n := len(e.answers(cd.attempt)); n != 2 {
		t.Fatalf("server has %d answers, want 2: %v", n, e.answers(cd.attempt))
	}

	// The page's heartbeat: a time request every 3 s, so the server's
	// outage credit (from the last message) is within 3 s of an outage.
	// The page looks each second whether 3 s have passed, so requests come
	// 3-4 s apart (a busy machine may delay a timer a little more): 10 s
	// hold 2 to 4 of them. (7 s could hold only one: CI saw it.)
	before := timeRequests(t, e)
	time.Sleep(10 * time.Second)
	if n := timeRequests(t, e) - before; n < 2 || n > 4 {
		t.Fatalf("%d time requests in 10 s, want a heartbeat every 3 s", n)
	}

	browsertest.Screenshot(t, ctx, "exam-answering")
	run("reload", chromedp.Reload(), chromedp.WaitVisible(".option"))
	waitTrue("answers back after reload", `document.querySelectorAll("#grid .cell.answered").length === 2 && document.querySelector('.option.chosen') !== null`)

	// Lose the network: the server side of the socket goes, and nothing reconnects.
	offline := func(off bool) {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := chromedp.Call(c, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: off, DownloadThroughput: -1, UploadThroughput: -1}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	// DevTools network emulation tells the page it is offline (navigator.onLine
	// and its events); the cut makes the server unreachable for sockets, as a
	// lost network would.
	offline(true)
	e.cut.Store(true)
	e.web.CloseSockets()
	waitTrue("page sees the socket gone", `!document.querySelector('#save').classList.contains('busy')`)
	run("answer offline", chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent("A"))
	waitTrue("offline indicator", `document.querySelector('#save').classList.contains('offline')`)
	browsertest.Screenshot(t, ctx, "exam-offline")
	pending := browsertest.Eval[int](t, ctx, `JSON.parse(localStorage.getItem('examhall:attempt:`+itoa(cd.attempt)+`:pending')).length`)
	if pending != 1 {
		t.Fatalf("%d answers kept in the browser, want 1", pending)
	}
	if n := len(e.answers(cd.attempt)); n != 2 {
		t.Fatalf("server has %d answers while the page is offline, want 2", n)
	}

	e.cut.Store(false)
	offline(false)
	browsertest.WaitTrue(t, ctx, "back online and acknowledged", `document.querySelector('#save').classList.contains('ok')`, 40*time.Second)
	if n := len(e.answers(cd.attempt)); n != 3 {
		t.Fatalf("server has %d answers after reconnecting, want 3", n)
	}

	run("submit",
		chromedp.Click("#submit"),
		chromedp.WaitVisible("#confirm-body"))
	browsertest.Screenshot(t, ctx, "exam-confirm")
	body := browsertest.Eval[string](t, ctx, `document.querySelector('#confirm-body').textContent`)
	if !contains(body, "17") { // 20 questions, 3 answered
		t.Fatalf("confirmation does not list the unanswered questions: %q", body)
	}
	run("confirm", chromedp.Click("#confirm-yes"), chromedp.WaitVisible("#ended"))
	browsertest.Screenshot(t, ctx, "exam-ended")
	waitStatus(t, e, cd.attempt, "submitted")
}

// loginPage logs a user in through the login page, as a person would.
func (e *examEnv) loginPage(c cand) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Navigate(e.srv.URL+"/login"), chromedp.SendKeys("#username", c.ticket),
		chromedp.SendKeys("#password", c.password), chromedp.Click("#login button[type=submit]"))
}

// timeRequests is how many time requests the server has received.
func timeRequests(t *testing.T, e *examEnv) int { return socketMessages(t, e, "time") }

// The exam page served by one node of a cluster follows its socket's
// redirect to the node that owns the candidate's room, and when that node
// drains, reconnects (moved) to the other one with nothing lost.
func TestExamPageFollowsItsRoomInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	e := newExamEnv(t, "sqlite", 1)
	other := e.secondNode() // the page comes from here; n1 (e) takes the room
	cd := e.cands[0]
	ctx := browsertest.New(t)
	run := func(what string, a ...chromedp.Action[chromedp.Void]) { browsertest.Run(t, ctx, what, a...) }
	waitTrue := func(what, expr string) { browsertest.WaitTrue(t, ctx, what, expr, 20*time.Second) }
	run("log in and start on n2",
		other.loginPage(cd),
		chromedp.WaitVisible("a[data-attempt]"),
		chromedp.Click("a[data-attempt]"),
		chromedp.WaitEnabled("#start"),
		chromedp.Click("#start"),
		chromedp.WaitVisible(".option"))
	run("answer", chromedp.Click(".option[data-option]"))
	waitTrue("saved on the room's owner", `document.querySelector('#save').classList.contains('ok') && document.querySelectorAll("#grid .cell.answered").length === 1`)
	if n := socketMessages(t, other, "redirect"); n == 0 {
		t.Fatal("n2 sent no redirect: the page's socket did not go to the room's owner")
	}
	if n := socketMessages(t, e, "answer"); n != 1 {
		t.Fatalf("the owner n1 got %d answers, want 1", n)
	}

	e.web.Node().Drain(context.Background())
	run("answer after the room moved", chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent("B"))
	waitTrue("saved on the new owner", `document.querySelector('#save').classList.contains('ok') && document.querySelectorAll("#grid .cell.answered").length === 2`)
	if n := socketMessages(t, other, "answer"); n == 0 {
		t.Fatal("the second answer did not reach n2, the room's new owner")
	}
	if n := len(e.answers(cd.attempt)); n != 2 {
		t.Fatalf("server has %d answers, want 2", n)
	}
}

// socketMessages is how many socket messages of a type a node received.
func socketMessages(t *testing.T, e *examEnv, typ string) int {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, `examhall_websocket_messages_total{type="`+typ+`"} `); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
