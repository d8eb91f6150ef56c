package media

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A recorded sample: silence, English speech, silence, Mandarin speech,
// silence, encoded as a browser does (Opus at a variable bit rate, 20 ms
// frames). The packet sizes alone say when someone spoke.
func TestSoundFromOpusSizes(t *testing.T) {
	for _, tool := range []string{"espeak-ng", "ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install espeak-ng ffmpeg; .ci/run does it)", tool)
		}
	}
	dir := t.TempDir()
	run := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}
	run("espeak-ng", "-v", "en", "-s", "150", "-w", filepath.Join(dir, "en.wav"), "Could you tell me the answer to question seven? I think it is the second option.")
	run("espeak-ng", "-v", "cmn", "-s", "150", "-w", filepath.Join(dir, "zh.wav"), "请问第七题的答案是什么？我觉得应该选第二个。")
	// 0-8 s silence, 8-14 English, 14-22 silence, 22-28 Mandarin, 28-36 silence.
	ogg := filepath.Join(dir, "sample.ogg")
	run("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-i", filepath.Join(dir, "en.wav"), "-i", filepath.Join(dir, "zh.wav"),
		"-filter_complex", "[0]atrim=0:8[a];[1]aresample=48000,apad,atrim=0:6[e];[0]atrim=0:8[b];[2]aresample=48000,apad,atrim=0:6[z];[0]atrim=0:8[c];[a][e][b][z][c]concat=n=5:v=0:a=1",
		"-c:a", "libopus", "-b:a", "32k", "-vbr", "on", "-frame_duration", "20", ogg)
	var s sound
	start := time.Unix(1_800_000_000, 0)
	var events []string
	for _, line := range strings.Split(strings.TrimSpace(run("ffprobe", "-v", "error", "-show_entries", "packet=pts_time,size", "-of", "csv=p=0", ogg)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 2 {
			continue
		}
		secs, err1 := strconv.ParseFloat(f[0], 64)
		size, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			continue // the header packets
		}
		if phase := s.add(start.Add(time.Duration(secs*float64(time.Second))), size); phase != "" {
			events = append(events, phase+"@"+strconv.Itoa(int(secs)))
		}
	}
	t.Logf("sound: %v", events)
	// Each speech starts within 3 s of its beginning and ends within 3 s
	// of its end (the speech itself is a little shorter than its 6 s).
	want := []struct {
		phase    string
		from, to int
	}{{"start", 8, 11}, {"end", 11, 17}, {"start", 22, 25}, {"end", 25, 31}}
	if len(events) != len(want) {
		t.Fatalf("sound %v, want a start and an end for each of the two speeches", events)
	}
	for i, w := range want {
		phase, at, _ := strings.Cut(events[i], "@")
		n, _ := strconv.Atoi(at)
		if phase != w.phase || n < w.from || n > w.to {
			t.Errorf("event %d: %s, want %s within %d-%d s", i, events[i], w.phase, w.from, w.to)
		}
	}
}
