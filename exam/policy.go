package exam

import (
	"encoding/json"
	"fmt"
	"time"
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
