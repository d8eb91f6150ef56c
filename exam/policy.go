package exam

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/examhall/examhall/store"
)

// Policy is an exam's clock rules, stored as JSON with the exam. Missing
// fields take the defaults.
type Policy struct {
	// GraceSeconds accepts answers in flight at the deadline (default 5).
	GraceSeconds *int `json:"grace_seconds,omitempty"`
	// CreditCapSeconds is the most outage time credited back to an attempt
	// (default 300; 0 turns crediting off).
	CreditCapSeconds *int `json:"outage_credit_cap_seconds,omitempty"`
	// MinOutageSeconds is the shortest disconnection credited (default 5).
	MinOutageSeconds *int `json:"min_outage_seconds,omitempty"`
	// PCMaxKbps and PhoneMaxKbps cap each camera's full layer (defaults
	// 300 and 200 kbit/s, from 100 to 2000): what candidates' uplinks and
	// the recordings pay per second.
	PCMaxKbps    *int `json:"pc_max_kbps,omitempty"`
	PhoneMaxKbps *int `json:"phone_max_kbps,omitempty"`
}

// ParsePolicy reads a policy; empty is all defaults.
func ParsePolicy(s string) (Policy, error) {
	var p Policy
	if s == "" {
		return p, nil
	}
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return p, fmt.Errorf("%w: policy: %v", ErrBadValue, err)
	}
	for _, v := range []*int{p.GraceSeconds, p.CreditCapSeconds, p.MinOutageSeconds} {
		if v != nil && (*v < 0 || *v > 3600) {
			return p, fmt.Errorf("%w: policy values are seconds from 0 to 3600", ErrBadValue)
		}
	}
	for _, v := range []*int{p.PCMaxKbps, p.PhoneMaxKbps} {
		if v != nil && (*v < 100 || *v > 2000) {
			return p, fmt.Errorf("%w: camera caps are kbit/s from 100 to 2000", ErrBadValue)
		}
	}
	return p, nil
}

func secs(v *int, def int) time.Duration {
	if v == nil {
		return time.Duration(def) * time.Second
	}
	return time.Duration(*v) * time.Second
}

func (p Policy) grace() time.Duration     { return secs(p.GraceSeconds, 5) }
func (p Policy) creditCap() time.Duration { return secs(p.CreditCapSeconds, 300) }
func (p Policy) minOutage() time.Duration { return secs(p.MinOutageSeconds, 5) }

// VideoCap is what a camera's full layer may send.
type VideoCap struct {
	MaxBitrate   int `json:"max_bitrate"`   // bit/s
	MaxFramerate int `json:"max_framerate"` // frames a second
}

// videoCap is the exam's cap for a device ("pc" or "phone").
func (p Policy) videoCap(device string) VideoCap {
	kbps, def := p.PCMaxKbps, 300
	if device == "phone" {
		kbps, def = p.PhoneMaxKbps, 200
	}
	return VideoCap{MaxBitrate: cmp.Or(deref(kbps), def) * 1000, MaxFramerate: 15}
}

func deref(v *int) int {
	if v == nil {
		return 0
	}
	return *v
}

// Bitrates the pages add to the cameras' caps: the PC's microphone (Opus,
// as browsers send it) and each camera's small layer for consoles.
const (
	audioBps      = 32_000
	smallLayerBps = 20_000
)

// recordedBps is what a seat's recordings take a second at the caps.
func (p Policy) recordedBps() int {
	return p.videoCap("pc").MaxBitrate + p.videoCap("phone").MaxBitrate + audioBps
}

// UploadNeedKbps is the upload a candidate's devices need at the exam's
// caps (both cameras with their small layers and the microphone; the phone
// may share the PC's network), for the device check to judge against.
func (e *Engine) UploadNeedKbps(ctx context.Context, attemptID int64) (int, error) {
	info, err := e.attemptExam(ctx, attemptID)
	if err != nil {
		return 0, err
	}
	return (info.policy.recordedBps() + 2*smallLayerBps) / 1000, nil
}

// VideoCapOf is the cap on a device's camera in an attempt, by its exam's
// policy.
func (e *Engine) VideoCapOf(ctx context.Context, attemptID int64, device string) (VideoCap, error) {
	info, err := e.attemptExam(ctx, attemptID)
	if err != nil {
		return VideoCap{}, err
	}
	return info.policy.videoCap(device), nil
}

// attemptExam is what the engine keeps of an attempt's exam.
func (e *Engine) attemptExam(ctx context.Context, attemptID int64) (*examInfo, error) {
	var a store.Attempt
	if err := e.db.WithContext(ctx).Select("id, exam_id").Take(&a, attemptID).Error; err != nil {
		return nil, err
	}
	return e.exam(ctx, a.ExamID)
}
