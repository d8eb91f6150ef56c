package exam

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/examhall/examhall/store"
)

// Browser is what a user agent says about the candidate's main device.
type Browser struct {
	Name    string `json:"name"`    // "chrome", "firefox" or what else it is
	Version int    `json:"version"` // major version, 0 if unknown
	OS      string `json:"os"`      // "windows", "macos", "linux", "chromeos", "android", "ios"
	Mobile  bool   `json:"mobile"`
	// Problem is the dictionary key of what is wrong ("" when the browser
	// may sit the exam); the page shows its fix.
	Problem string `json:"problem,omitempty"`
}

// Supported versions: current Chrome and Firefox, and Firefox ESR.
const (
	MinChrome  = 110
	MinFirefox = 115
)

var (
	reChrome  = regexp.MustCompile(`(?:Chrome|CriOS)/(\d+)`)
	reFirefox = regexp.MustCompile(`(?:Firefox|FxiOS)/(\d+)`)
)

// CheckBrowser applies the rules of the exam's main device: Chrome or
// Firefox, at a supported version, on a desktop operating system. Chromium
// relatives (Edge, Opera, 360, QQ, WeChat's browser) are refused, so a
// candidate is not surprised on exam day by what they change.
func CheckBrowser(ua string) Browser {
	b := Browser{}
	switch {
	case strings.Contains(ua, "Android"):
		b.OS, b.Mobile = "android", true
	case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"), strings.Contains(ua, "iPod"):
		b.OS, b.Mobile = "ios", true
	case strings.Contains(ua, "Windows"):
		b.OS = "windows"
	case strings.Contains(ua, "CrOS"):
		b.OS = "chromeos"
	case strings.Contains(ua, "Mac OS X"), strings.Contains(ua, "Macintosh"):
		b.OS = "macos"
	case strings.Contains(ua, "Linux"), strings.Contains(ua, "X11"):
		b.OS = "linux"
	}
	if strings.Contains(ua, "Mobile") {
		b.Mobile = true
	}
	other := func(name string) bool { return strings.Contains(ua, name) }
	switch {
	case other("Edg/"), other("EdgA/"), other("EdgiOS/"):
		b.Name = "edge"
	case other("OPR/"), other("Opera"):
		b.Name = "opera"
	case other("MicroMessenger"):
		b.Name = "wechat"
	case other("QQBrowser"), other("360SE"), other("UCBrowser"), other("SamsungBrowser"):
		b.Name = "other"
	case reFirefox.MatchString(ua):
		b.Name = "firefox"
		b.Version, _ = strconv.Atoi(reFirefox.FindStringSubmatch(ua)[1])
	case reChrome.MatchString(ua):
		b.Name = "chrome"
		b.Version, _ = strconv.Atoi(reChrome.FindStringSubmatch(ua)[1])
	case other("Safari/"):
		b.Name = "safari"
	default:
		b.Name = "unknown"
	}
	switch {
	case b.Mobile:
		b.Problem = "check.browser.mobile"
	case b.Name != "chrome" && b.Name != "firefox":
		b.Problem = "check.browser.unsupported"
	case b.Name == "chrome" && b.Version < MinChrome, b.Name == "firefox" && b.Version < MinFirefox:
		b.Problem = "check.browser.old"
	}
	return b
}

// Step is one thing a candidate does before the exam.
type Step string

// The steps, in the order the page walks them.
const (
	StepDevice   Step = "device_check" // browser, camera, microphone, network, screens, WebRTC
	StepRules    Step = "rules"        // read and accepted the exam rules (考试须知)
	StepIdentity Step = "identity"     // a still of face and ID card
	StepPhone    Step = "phone"        // the phone camera paired and sending
	StepSetup    Step = "setup"        // placement and room checklist confirmed
)

// Steps are every step, in order.
var Steps = []Step{StepDevice, StepRules, StepIdentity, StepPhone, StepSetup}

// Admission modes of a session.
const (
	AdmitOpen   = "open"   // no admission: candidates start within the window
	AdmitAuto   = "auto"   // admitted as soon as every step is done
	AdmitManual = "manual" // an invigilator admits each candidate (or the room)
)

// Readiness is where a candidate stands before the exam.
type Readiness struct {
	Done     map[Step]bool `json:"done"`
	Admitted bool          `json:"admitted"`
	Refused  string        `json:"refused,omitempty"` // the reason, when refused
}

// State of a candidate before the exam.
const (
	StateNotReady = "not_ready" // steps left
	StateReady    = "ready"     // every step done, waiting to be admitted
	StateAdmitted = "admitted"  // may start once the session is open
	StateRefused  = "refused"   // refused by an invigilator, with a reason
)

// Missing lists the steps still to do, in order.
func (r Readiness) Missing() []Step {
	var out []Step
	for _, s := range Steps {
		if !r.Done[s] {
			out = append(out, s)
		}
	}
	return out
}

// State says where the candidate stands under an admission mode.
func (r Readiness) State(mode string) string {
	switch {
	case r.Refused != "":
		return StateRefused
	case mode == AdmitOpen, r.Admitted:
		return StateAdmitted
	case len(r.Missing()) > 0:
		return StateNotReady
	case mode == AdmitAuto:
		return StateAdmitted
	}
	return StateReady
}

// CanAdmit says whether an invigilator may admit the candidate now: every
// step done (an invigilator may admit one with steps left only by saying
// why, through force), not already admitted.
func (r Readiness) CanAdmit(force bool) error {
	if r.Admitted {
		return nil
	}
	if len(r.Missing()) > 0 && !force {
		return ErrNotReady
	}
	return nil
}

// ErrNotReady: the candidate has steps left.
var ErrNotReady = store.NewError("exam", store.Conflict, "not_ready", "the candidate has not finished the steps before the exam")

// DeviceCheck is what the page measured, with the server's verdict on the
// browser. Passed is false when any check failed; warnings do not fail it.
type DeviceCheck struct {
	Browser Browser           `json:"browser"`
	Results map[string]string `json:"results"` // check → "passed", "warning" or "failed"
	Passed  bool              `json:"passed"`
}

// deviceChecks are the checks the page runs besides the browser.
var deviceChecks = []string{"camera", "microphone", "network", "screens", "fullscreen", "webrtc"}

// JudgeDeviceCheck decides a device check from the page's results and the
// user agent the server saw (the page cannot vouch for its own browser).
func JudgeDeviceCheck(ua string, results map[string]string) DeviceCheck {
	d := DeviceCheck{Browser: CheckBrowser(ua), Results: map[string]string{}, Passed: true}
	if d.Browser.Problem != "" {
		d.Passed = false
	}
	for _, c := range deviceChecks {
		v := results[c]
		if v != "passed" && v != "warning" {
			v = "failed"
		}
		d.Results[c] = v
		if v == "failed" {
			d.Passed = false
		}
	}
	return d
}

// CheckDevices judges a device check of the attempt's candidate, audits it
// whether it passed or not, and records the step when it passed.
func (e *Engine) CheckDevices(ctx context.Context, attemptID int64, ua string, results map[string]string) (DeviceCheck, error) {
	d := JudgeDeviceCheck(ua, results)
	err := e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := e.auditStep(tx, attemptID, "device_check", d); err != nil || !d.Passed {
			return err
		}
		return e.recordStep(tx, attemptID, StepDevice, d)
	})
	return d, err
}

// stepAudits names the audit event of each step the candidate takes; an
// admission or refusal is audited by the proctor, as the invigilator's act.
var stepAudits = map[Step]string{StepRules: "rules_accepted", StepIdentity: "identity_still", StepPhone: "phone_live",
	StepSetup: "setup_confirmed", StepDevice: "device_check"}

// RecordStep stores a finished step of an attempt, replacing an earlier
// one, and audits it as the candidate's act.
func (e *Engine) RecordStep(ctx context.Context, attemptID int64, step Step, detail any) error {
	return e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := e.recordStep(tx, attemptID, step, detail); err != nil {
			return err
		}
		if action, ok := stepAudits[step]; ok {
			return e.auditStep(tx, attemptID, action, detail)
		}
		return nil
	})
}

func (e *Engine) recordStep(tx *gorm.DB, attemptID int64, step Step, detail any) error {
	row := &store.ReadinessStep{AttemptID: attemptID, Step: string(step), DoneAt: e.now(), Detail: string(mustJSON(detail))}
	return tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(row).Error
}

// auditStep records a step of the journey as the act of the attempt's
// candidate.
func (e *Engine) auditStep(tx *gorm.DB, attemptID int64, action string, detail any) error {
	var a store.Attempt
	if err := tx.Select("candidate_id").Take(&a, attemptID).Error; err != nil {
		return err
	}
	return tx.Create(&store.AuditEvent{At: e.now(), ActorID: &a.CandidateID, Action: action, ObjectType: "attempt",
		ObjectID: itoa(attemptID), Detail: string(mustJSON(detail))}).Error
}

// StepsDone lists an attempt's finished steps.
func (e *Engine) StepsDone(ctx context.Context, attemptID int64) (map[Step]bool, error) {
	var rows []store.ReadinessStep
	if err := e.db.WithContext(ctx).Where("attempt_id = ?", attemptID).Find(&rows).Error; err != nil {
		return nil, err
	}
	done := map[Step]bool{}
	for _, r := range rows {
		done[Step(r.Step)] = true
	}
	return done, nil
}

// Admission records of an attempt (kept with the steps).
const (
	stepAdmitted Step = "admitted"
	stepRefused  Step = "refused"
)

// ErrRefused: an invigilator refused the candidate; the reason is told.
var ErrRefused = store.NewError("exam", store.Forbidden, "refused", "the invigilator refused admission")

// ReadinessOf is where an attempt's candidate stands.
func (e *Engine) ReadinessOf(ctx context.Context, attemptID int64) (Readiness, error) {
	var rows []store.ReadinessStep
	if err := e.db.WithContext(ctx).Where("attempt_id = ?", attemptID).Find(&rows).Error; err != nil {
		return Readiness{}, err
	}
	r := Readiness{Done: map[Step]bool{}}
	for _, row := range rows {
		switch Step(row.Step) {
		case stepAdmitted:
			r.Admitted = true
		case stepRefused:
			var d struct{ Reason string }
			json.Unmarshal([]byte(row.Detail), &d)
			r.Refused = d.Reason
		default:
			r.Done[Step(row.Step)] = true
		}
	}
	return r, nil
}

// Admit lets a candidate start (an invigilator's decision; force admits one
// with steps left). It lifts an earlier refusal.
func (e *Engine) Admit(ctx context.Context, attemptID, by int64, force bool) error {
	r, err := e.ReadinessOf(ctx, attemptID)
	if err != nil {
		return err
	}
	if err := r.CanAdmit(force); err != nil {
		return err
	}
	if err := e.db.WithContext(ctx).Where("attempt_id = ? AND step = ?", attemptID, string(stepRefused)).Delete(&store.ReadinessStep{}).Error; err != nil {
		return err
	}
	return e.RecordStep(ctx, attemptID, stepAdmitted, map[string]any{"by": by, "forced": force && len(r.Missing()) > 0})
}

// Refuse keeps a candidate out, with a reason the candidate sees.
func (e *Engine) Refuse(ctx context.Context, attemptID, by int64, reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return fmt.Errorf("%w: a refusal needs a reason", ErrBadValue)
	}
	return e.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("attempt_id = ? AND step = ?", attemptID, string(stepAdmitted)).Delete(&store.ReadinessStep{}).Error; err != nil {
			return err
		}
		if err := e.recordStep(tx, attemptID, stepRefused, map[string]any{"by": by, "reason": reason}); err != nil {
			return err
		}
		return refusedNotice(ctx, tx, attemptID, reason, e.now())
	})
}
