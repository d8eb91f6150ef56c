package exam

import (
	"errors"
	"testing"
)

func TestCheckBrowser(t *testing.T) {
	tests := []struct {
		name, ua    string
		browser, os string
		version     int
		mobile      bool
		problem     string
	}{
		{"Chrome on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "chrome", "windows", 131, false, ""},
		{"Chrome on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", "chrome", "macos", 130, false, ""},
		{"Firefox on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", "firefox", "windows", 133, false, ""},
		{"Firefox ESR on Linux", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "firefox", "linux", 128, false, ""},
		{"old Chrome", "Mozilla/5.0 (Windows NT 6.1; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/86.0.4240.198 Safari/537.36", "chrome", "windows", 86, false, "check.browser.old"},
		{"Edge", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "edge", "windows", 0, false, "check.browser.unsupported"},
		{"Safari on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15", "safari", "macos", 0, false, "check.browser.unsupported"},
		{"Chrome on Android", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "chrome", "android", 131, true, "check.browser.mobile"},
		{"an iPad", "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", "safari", "ios", 0, true, "check.browser.mobile"},
		{"WeChat on a PC", "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/81.0.4044.138 Safari/537.36 NetType/WIFI MicroMessenger/7.0.20.1781(0x6700143B) WindowsWechat", "wechat", "windows", 0, false, "check.browser.unsupported"},
		{"headless Chromium (the tests)", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36", "chrome", "linux", 156, false, ""},
		{"nothing", "", "unknown", "", 0, false, "check.browser.unsupported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := CheckBrowser(tt.ua)
			if b.Name != tt.browser || b.OS != tt.os || b.Version != tt.version || b.Mobile != tt.mobile || b.Problem != tt.problem {
				t.Fatalf("got %+v, want %s %s %d mobile=%v problem=%q", b, tt.browser, tt.os, tt.version, tt.mobile, tt.problem)
			}
		})
	}
}

func TestReadinessStateMachine(t *testing.T) {
	all := map[Step]bool{StepDevice: true, StepRules: true, StepIdentity: true, StepPhone: true, StepSetup: true}
	tests := []struct {
		name  string
		r     Readiness
		mode  string
		state string
	}{
		{"nothing done, open session", Readiness{}, AdmitOpen, StateAdmitted},
		{"nothing done, auto", Readiness{}, AdmitAuto, StateNotReady},
		{"all done, auto admits", Readiness{Done: all}, AdmitAuto, StateAdmitted},
		{"all done, manual waits", Readiness{Done: all}, AdmitManual, StateReady},
		{"admitted by the invigilator", Readiness{Done: all, Admitted: true}, AdmitManual, StateAdmitted},
		{"refused wins over everything", Readiness{Done: all, Admitted: true, Refused: "证件与本人不符"}, AdmitOpen, StateRefused},
		{"one step left", Readiness{Done: map[Step]bool{StepDevice: true, StepRules: true, StepIdentity: true, StepPhone: true}}, AdmitManual, StateNotReady},
	}
	for _, tt := range tests {
		if got := tt.r.State(tt.mode); got != tt.state {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.state)
		}
	}
	r := Readiness{Done: map[Step]bool{StepDevice: true, StepSetup: true}}
	if m := r.Missing(); len(m) != 3 || m[0] != StepRules || m[2] != StepPhone {
		t.Errorf("missing %v", m)
	}
	if err := r.CanAdmit(false); !errors.Is(err, ErrNotReady) {
		t.Errorf("admitting with steps left: %v", err)
	}
	if err := r.CanAdmit(true); err != nil {
		t.Errorf("forced admission: %v", err)
	}
	if err := (Readiness{Done: all}).CanAdmit(false); err != nil {
		t.Errorf("admitting a ready candidate: %v", err)
	}
}
