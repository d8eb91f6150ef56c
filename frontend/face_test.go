package frontend_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/examhall/examhall/frontend"
	"github.com/examhall/examhall/store"
	"github.com/examhall/examhall/store/storetest"
)

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The browser's face and voice models are served from the npm folder only
// when they are all there; otherwise the server still starts and says
// analysis is off.
func TestFaceModelsServedOnlyWhenInstalled(t *testing.T) {
	installed := t.TempDir()
	for _, f := range []string{"@vladmandic/human/dist/human.esm.js", "@vladmandic/human/models/facemesh.json", "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
		"@ricky0123/vad-web/dist/silero_vad_v5.onnx", "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm"} {
		os.MkdirAll(filepath.Join(installed, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(installed, f), []byte("// "+f), 0o644)
	}
	db := storetest.NewDB(t, "sqlite")
	for _, tt := range []struct {
		name, dir, log string
		code           int
	}{
		{"installed", installed, "browser face analysis is on", 200},
		{"missing", filepath.Join(installed, "nothing"), "browser face analysis is off", 404},
		{"not configured", "", "browser face analysis is off", 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log syncBuf
			s, err := frontend.New(frontend.Config{DB: db, Bus: store.NewMemBus(), Counters: store.NewMemCounters(), Metrics: prometheus.NewRegistry(),
				Logger: slog.New(slog.NewTextHandler(&log, nil)), DataDir: t.TempDir(), FaceModels: tt.dir})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(s)
			defer srv.Close()
			voice := strings.Replace(tt.log, "face analysis", "voice detection", 1)
			if !strings.Contains(log.String(), tt.log) || !strings.Contains(log.String(), voice) {
				t.Errorf("log %q lacks %q or %q", log.String(), tt.log, voice)
			}
			for _, path := range []string{"/vendor/human/human.esm.js", "/vendor/human/models/facemesh.json", "/vendor/tfjs-wasm/tfjs-backend-wasm-simd.wasm",
				"/vendor/vad/silero_vad_v5.onnx", "/vendor/ort/ort-wasm-simd-threaded.wasm"} {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.code {
					t.Errorf("%s: %d, want %d", path, resp.StatusCode, tt.code)
				}
			}
			for _, path := range []string{"/vendor/human/", "/vendor/human/models/", "/vendor/human/../../package.json"} {
				resp, err := http.Get(srv.URL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode == 200 {
					t.Errorf("%s served", path)
				}
			}
		})
	}
}
