package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/examhall/examhall/frontend/browsertest"
	"github.com/examhall/examhall/media"
	"github.com/examhall/examhall/media/mediatest"
	"github.com/examhall/examhall/store"
)

// tileStats reads every tile's video in a console: stream, frames decoded
// and decoded width.
const tileStats = `[...document.querySelectorAll('#tiles video.cam.live')].map(v => ({s: v.dataset.stream, f: v.getVideoPlaybackQuality().totalVideoFrames, w: v.videoWidth}))`

type tileStat struct {
	S string `json:"s"`
	F int    `json:"f"`
	W int    `json:"w"`
}

// watchSends keeps, in the page, the size of the largest message it sent
// on a socket and, while window.__pad is set, pads its view answers past
// their limit, as a page with a far bigger answer would send.
const watchSends = `
window.__largest = 0;
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (window.__pad && typeof data === 'string' && data.includes('"view_answer"')) data = data.replace('"sdp":"', '"pad":"' + 'x'.repeat(600 << 10) + '","sdp":"');
  else window.__largest = Math.max(window.__largest, data.length);
  return send.call(this, data);
};`

// A room of 15 candidates, each publishing both cameras in two layers and
// the PC's microphone: the responsible invigilator's console decodes all 30
// tiles at the thumbnail's size, opening a candidate brings both cameras
// at full size within 2 s, candidates who leave and come back are back in
// their tiles, a refused answer is shown and the video recovers, and a
// chief's console decodes the whole room too.
func TestConsoleAtRoomSizeInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	const n = 15
	e := newExamEnv(t, "sqlite", n)
	if err := e.db.Create(&store.RoomInvigilator{RoomID: e.room, UserID: e.chief.id}).Error; err != nil {
		t.Fatal(err)
	}
	publish := func(c cand) [2]*mediatest.Publisher {
		pc, phone := mediatest.New(t, true, true), mediatest.New(t, false, true)
		pc.Connect(e.media, c.attempt, media.PC)
		phone.Connect(e.media, c.attempt, media.Phone)
		go pc.Send(5 * time.Minute)
		go phone.Send(5 * time.Minute)
		return [2]*mediatest.Publisher{pc, phone}
	}
	devices := make([][2]*mediatest.Publisher, n)
	for i, c := range e.cands {
		devices[i] = publish(c)
	}

	inv := browsertest.New(t)
	if _, err := chromedp.Call(inv, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watchSends}); err != nil {
		t.Fatal(err)
	}
	browsertest.Run(t, inv, "invigilator opens the console", e.loginPage(e.invA), chromedp.WaitVisible(".tile[data-attempt]"))
	decoding := func(ctx context.Context, who string, want int) map[string]tileStat {
		t.Helper()
		browsertest.WaitTrue(t, ctx, fmt.Sprintf("%s: %d tiles decode", who, want),
			fmt.Sprintf(`(() => { const s = %s; return s.length === %d && s.every(x => x.f > 5); })()`, tileStats, want), 60*time.Second)
		before := stats(t, ctx)
		time.Sleep(2 * time.Second)
		after := stats(t, ctx)
		for id, s := range after {
			if s.F <= before[id].F {
				t.Errorf("%s: tile %s stopped decoding (%d then %d frames)", who, id, before[id].F, s.F)
			}
		}
		return after
	}
	thumbs := func(ctx context.Context, who string, st map[string]tileStat) {
		t.Helper()
		for id, s := range st {
			if s.W != 160 {
				t.Errorf("%s: tile %s decodes %d pixels wide, want the thumbnail's 160", who, id, s.W)
			}
		}
	}
	thumbs(inv, "invigilator", decoding(inv, "invigilator", 2*n))
	largest := browsertest.Eval[int](t, inv, `window.__largest`)
	t.Logf("the console's largest message: %d bytes", largest)
	if largest <= 16<<10 {
		t.Errorf("the console's largest answer is %d bytes: the room is too small to test the limit", largest)
	}

	// Opening a candidate: both cameras at full size within 2 s.
	open := e.cands[3]
	began := time.Now()
	browsertest.Run(t, inv, "open a candidate", chromedp.Click(fmt.Sprintf(`.tile[data-attempt="%d"]`, open.attempt)))
	browsertest.WaitTrue(t, inv, "both cameras at full size",
		fmt.Sprintf(`[...document.querySelectorAll('.cams.big video.cam.live')].filter(v => v.dataset.stream.startsWith('a%d-') && v.videoWidth === 640).length === 2`, open.attempt), 2*time.Second)
	t.Logf("full size after %s", time.Since(began))
	for id, s := range stats(t, inv) {
		if id != media.StreamID(open.attempt, media.PC) && id != media.StreamID(open.attempt, media.Phone) && s.W != 160 {
			t.Errorf("tile %s of a candidate not opened is %d wide", id, s.W)
		}
	}
	browsertest.Run(t, inv, "close the candidate", chromedp.Click("#detail-close"))

	// Three candidates lose both devices, then come back.
	for i := range 3 {
		devices[i][0].Close()
		devices[i][1].Close()
	}
	gone := fmt.Sprintf(`(() => { const s = %s; return s.length === %d; })()`, tileStats, 2*(n-3))
	browsertest.WaitTrue(t, inv, "the tiles of those who left show no video", gone, 20*time.Second)
	for i := range 3 {
		devices[i] = publish(e.cands[i])
	}
	decoding(inv, "invigilator after the return", 2*n)

	// An answer over its limit is refused: the page says so, and the
	// server offers again until an answer arrives.
	browsertest.Eval[bool](t, inv, `window.__pad = true`)
	devices[4][1].Close()
	browsertest.WaitTrue(t, inv, "the refusal is shown",
		`(() => { const b = document.querySelector('#sock-error'); return !!b && !b.hidden && b.textContent.includes('view_answer'); })()`, 20*time.Second)
	browsertest.Eval[bool](t, inv, `(window.__pad = false, true)`)
	devices[4] = [2]*mediatest.Publisher{devices[4][0], mediatest.New(t, false, true)}
	devices[4][1].Connect(e.media, e.cands[4].attempt, media.Phone)
	go devices[4][1].Send(5 * time.Minute)
	decoding(inv, "invigilator after a refused answer", 2*n)
	browsertest.Screenshot(t, inv, "console-room")
	chromedp.Cancel(inv)

	// The chief watches the whole room.
	chief := browsertest.New(t)
	browsertest.Run(t, chief, "chief opens the console", e.loginPage(e.chief), chromedp.WaitVisible("#room"),
		chromedp.Navigate(fmt.Sprintf("%s/console?room=%d", e.srv.URL, e.room)), chromedp.WaitVisible(".tile[data-attempt]"))
	thumbs(chief, "chief", decoding(chief, "chief", 2*n))
}

func stats(t *testing.T, ctx context.Context) map[string]tileStat {
	t.Helper()
	out := map[string]tileStat{}
	for _, s := range browsertest.Eval[[]tileStat](t, ctx, tileStats) {
		out[s.S] = s
	}
	return out
}

// capturePCs keeps the page's peer connections, so the measurement can
// read their statistics without the page exposing anything.
const capturePCs = `
window.__pcs = [];
const Native = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) { const pc = new Native(...args); window.__pcs.push(pc); return pc; };
window.RTCPeerConnection.prototype = Native.prototype;`

// receivedBytes sums the bytes every connection of the page has received.
func receivedBytes(t *testing.T, ctx context.Context) float64 {
	browsertest.Eval[bool](t, ctx, `(window.__rx = undefined, (async () => { let n = 0; for (const pc of window.__pcs) { if (pc.connectionState === 'closed') continue;
  (await pc.getStats()).forEach((r) => { if (r.type === 'inbound-rtp') n += r.bytesReceived; }); } window.__rx = n; })(), true)`)
	browsertest.WaitTrue(t, ctx, "statistics", `window.__rx !== undefined`, 10*time.Second)
	return browsertest.Eval[float64](t, ctx, `window.__rx`)
}

// TestConsoleCost measures what an invigilator's browser pays for a room of
// 15 candidates' two cameras (30 tiles): CPU, memory and download, with the
// tiles on the small layer, with one candidate opened at full quality, and
// with every camera sent in one full layer (as before simulcast). It only
// reports; BENCHMARKS.md has the figures. Run with
// EXAMHALL_BENCH_CONSOLE=1 go test -count=1 -run TestConsoleCost -v ./cmd/examhall/e2e/
func TestConsoleCost(t *testing.T) {
	if os.Getenv("EXAMHALL_BENCH_CONSOLE") == "" {
		t.Skip("a measurement: set EXAMHALL_BENCH_CONSOLE=1")
	}
	window := 30 * time.Second
	if d, err := time.ParseDuration(os.Getenv("EXAMHALL_BENCH_WINDOW")); err == nil {
		window = d
	}
	const n = 15
	for _, tc := range []struct {
		name      string
		simulcast bool
		open      bool
	}{{"thumbnails", true, false}, {"thumbnails and one opened", true, true}, {"one layer (no simulcast)", false, false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newExamEnv(t, "sqlite", n)
			for _, c := range e.cands {
				pc, phone := mediatest.New(t, true, tc.simulcast), mediatest.New(t, false, tc.simulcast)
				if !tc.simulcast {
					pc.IVF, phone.IVF = mediatest.Testdata("camera-h.ivf"), mediatest.Testdata("camera-h.ivf")
				}
				pc.Connect(e.media, c.attempt, media.PC)
				phone.Connect(e.media, c.attempt, media.Phone)
				go pc.Send(5 * time.Minute)
				go phone.Send(5 * time.Minute)
			}
			dir := t.TempDir()
			inv := browsertest.New(t, chromedp.UserDataDir(dir))
			if _, err := chromedp.Call(inv, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: capturePCs}); err != nil {
				t.Fatal(err)
			}
			browsertest.Run(t, inv, "console", e.loginPage(e.invA), chromedp.WaitVisible(".tile[data-attempt]"))
			browsertest.WaitTrue(t, inv, "30 tiles decode", fmt.Sprintf(`(() => { const s = %s; return s.length === %d && s.every(x => x.f > 5); })()`, tileStats, 2*n), 60*time.Second)
			if tc.open {
				browsertest.Run(t, inv, "open one", chromedp.Click(fmt.Sprintf(`.tile[data-attempt="%d"]`, e.cands[0].attempt)))
			}
			time.Sleep(5 * time.Second)
			cpu0, _ := browserUsage(t, dir)
			bytes0 := receivedBytes(t, inv)
			frames0 := stats(t, inv)
			began := time.Now()
			time.Sleep(window)
			cpu1, pss := browserUsage(t, dir)
			bytes1 := receivedBytes(t, inv)
			el := time.Since(began).Seconds()
			frames := 0
			for id, s := range stats(t, inv) {
				frames += s.F - frames0[id].F
			}
			t.Logf("%s: browser CPU %.2f cores, memory (PSS) %.0f MiB, download %.0f kbit/s, %.1f frames/s decoded over %d tiles",
				tc.name, (cpu1-cpu0)/el, pss/(1<<20), (bytes1-bytes0)*8/el/1000, float64(frames)/el, 2*n)
		})
	}
}

// TestCameraLayers measures what Chromium's exam page sends of its (fake)
// camera in each simulcast layer: the bitrate, size and frame rate the
// pion fixtures (camera-h.ivf, camera-l.ivf) stand in for. It only
// reports. Run with
// EXAMHALL_BENCH_CONSOLE=1 go test -count=1 -run TestCameraLayers -v ./cmd/examhall/e2e/
func TestCameraLayers(t *testing.T) {
	if os.Getenv("EXAMHALL_BENCH_CONSOLE") == "" {
		t.Skip("a measurement: set EXAMHALL_BENCH_CONSOLE=1")
	}
	e := newExamEnv(t, "sqlite", 1)
	ctx := browsertest.New(t)
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: capturePCs}); err != nil {
		t.Fatal(err)
	}
	browsertest.Run(t, ctx, "candidate starts", e.loginPage(e.cands[0]),
		chromedp.WaitVisible("a[data-attempt]"), chromedp.Click("a[data-attempt]"),
		chromedp.WaitEnabled("#start"), chromedp.Click("#start"), chromedp.WaitVisible("#selfview"))
	layers := func() map[string]map[string]float64 {
		browsertest.Eval[bool](t, ctx, `(window.__tx = undefined, (async () => { const out = {}; for (const pc of window.__pcs) {
  (await pc.getStats()).forEach((r) => { if (r.type === 'outbound-rtp' && r.kind === 'video') out[r.rid || '-'] = {bytes: r.bytesSent, frames: r.framesEncoded, w: r.frameWidth || 0, h: r.frameHeight || 0}; }); }
  window.__tx = out; })(), true)`)
		browsertest.WaitTrue(t, ctx, "statistics", `window.__tx !== undefined`, 10*time.Second)
		return browsertest.Eval[map[string]map[string]float64](t, ctx, `window.__tx`)
	}
	time.Sleep(10 * time.Second) // past the bandwidth estimate's ramp-up
	a := layers()
	began := time.Now()
	time.Sleep(30 * time.Second)
	b := layers()
	el := time.Since(began).Seconds()
	for rid, l := range b {
		t.Logf("layer %s: %.0fx%.0f, %.1f frames/s, %.0f kbit/s", rid, l["w"], l["h"], (l["frames"]-a[rid]["frames"])/el, (l["bytes"]-a[rid]["bytes"])*8/el/1000)
	}
}

// browserUsage sums the CPU seconds and the proportional memory of the
// Chromium processes started with the user data dir dir.
func browserUsage(t *testing.T, dir string) (cpu, pss float64) {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	tick := 100.0 // USER_HZ on Linux
	for _, p := range procs {
		cmd, err := os.ReadFile(p + "/cmdline")
		if err != nil || !strings.Contains(string(cmd), dir) {
			continue
		}
		stat, err := os.ReadFile(p + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		cpu += (ut + st) / tick
		if b, err := os.ReadFile(p + "/smaps_rollup"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "Pss:") {
					kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
					pss += kb * 1024
				}
			}
		}
	}
	return cpu, pss
}
