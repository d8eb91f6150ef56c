package certify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/examhall/examhall/exam"
	"github.com/examhall/examhall/store"
)

// Bounds of the rules an admin may set.
const (
	// MinUploadLimit and MaxUploadLimit bound a programme's upload limit:
	// below 64 KiB no real plan fits; 64 MiB is the web layer's ceiling.
	MinUploadLimit = 64 << 10
	MaxUploadLimit = 64 << 20
	// MaxWorkingDays bounds the submission window (a year of working days).
	MaxWorkingDays = 260
	// MaxCalendarDays bounds each of the holiday and working-weekend lists.
	MaxCalendarDays = 1000
)

// RuleProblem is one rule refused by validation: the rule's JSON name and
// what is wrong with its value, in English.
type RuleProblem struct {
	Rule  string `json:"rule"`
	Error string `json:"error"`
}

// RulesError refuses a change of rules, naming every rule whose value is
// out of bounds; nothing was changed.
type RulesError struct{ Problems []RuleProblem }

func (e *RulesError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Rule + ": " + p.Error
	}
	return "certify: invalid rules: " + strings.Join(parts, "; ")
}

// Unwrap makes it an ErrRuleValue to clients.
func (e *RulesError) Unwrap() error { return ErrRuleValue }

// RuleErrors lists the refused rules, for the client.
func (e *RulesError) RuleErrors() any { return e.Problems }

// ValidatePolicy checks every rule of a programme against its bounds and
// returns a *RulesError naming each rule that is out of them. It also
// normalises the calendar: dates sorted, duplicates removed.
func ValidatePolicy(p *Policy) error {
	var bad []RuleProblem
	check := func(ok bool, rule, format string, args ...any) {
		if !ok {
			bad = append(bad, RuleProblem{rule, fmt.Sprintf(format, args...)})
		}
	}
	check(p.PassMark >= 0 && p.PassMark <= 100, "pass_mark", "%d is not within 0 to 100", p.PassMark)
	check(p.Ratio >= 1, "invigilator_ratio", "%d candidates per invigilator; at least 1", p.Ratio)
	check(p.MinPerRoom >= 1, "min_invigilators_per_room", "%d; at least 1", p.MinPerRoom)
	check(p.RoomCapacity >= 1, "room_capacity", "%d; at least 1", p.RoomCapacity)
	check(p.RetakesPerComponent >= 0, "retakes_per_component", "%d; 0 or more", p.RetakesPerComponent)
	check(p.RetakeFeeCents >= 0, "retake_fee_cents", "%d; 0 or more", p.RetakeFeeCents)
	check(p.DedicatedRetakeThreshold >= 0, "dedicated_retake_threshold", "%d; 0 or more", p.DedicatedRetakeThreshold)
	check(p.MinPanelSize >= 3 && p.MinPanelSize%2 == 1, "min_panel_size", "%d; at least 3 and odd", p.MinPanelSize)
	check(p.SubmissionWorkingDays >= 1 && p.SubmissionWorkingDays <= MaxWorkingDays, "submission_working_days",
		"%d; 1 to %d", p.SubmissionWorkingDays, MaxWorkingDays)
	check(educationRank(p.MinEducation) > 0, "min_education", "%q is not one of %s", p.MinEducation, strings.Join(Educations, ", "))
	check(p.TheoryMinutes >= 1 && p.TheoryMinutes <= 600, "theory_minutes", "%d; 1 to 600", p.TheoryMinutes)
	check(p.ScoreMethod == Mean || p.ScoreMethod == Median, "score_method", "%q is mean or median", p.ScoreMethod)
	check(p.MaxUploadBytes >= MinUploadLimit && p.MaxUploadBytes <= MaxUploadLimit, "max_upload_bytes",
		"%d; %d to %d bytes", p.MaxUploadBytes, MinUploadLimit, MaxUploadLimit)
	dates := func(rule string, list []string, weekend bool) []string {
		out := make([]string, 0, len(list))
		for _, d := range list {
			d = strings.TrimSpace(d)
			day, err := time.Parse(time.DateOnly, d)
			if err != nil {
				check(false, rule, "%q is not a date YYYY-MM-DD", d)
				continue
			}
			if wd := day.Weekday(); weekend && wd != time.Saturday && wd != time.Sunday {
				check(false, rule, "%s is a %s, not a weekend day", d, wd)
				continue
			}
			out = append(out, d)
		}
		slices.Sort(out)
		out = slices.Compact(out)
		check(len(out) <= MaxCalendarDays, rule, "%d dates; at most %d", len(out), MaxCalendarDays)
		return out
	}
	p.Holidays = dates("holidays", p.Holidays, false)
	p.WorkingWeekends = dates("working_weekends", p.WorkingWeekends, true)
	for _, d := range p.WorkingWeekends {
		if _, found := slices.BinarySearch(p.Holidays, d); found {
			check(false, "working_weekends", "%s is also a holiday", d)
		}
	}
	if len(bad) > 0 {
		return &RulesError{bad}
	}
	return nil
}

// LevelSettings are the rules of one level an admin may set.
type LevelSettings struct {
	TrainingHours int      `json:"training_hours"`
	FeeCents      int64    `json:"fee_cents"`
	Components    []string `json:"components"`
}

// componentOrder is the order components are sat in: theory first, as the
// practical assessment and the review open when theory is passed.
var componentOrder = []exam.Component{exam.Theory, exam.Practical, exam.Review}

// ValidateLevel checks a level's settings, naming each rule out of bounds,
// and puts the components in the order they are sat.
func ValidateLevel(l *LevelSettings) error {
	var bad []RuleProblem
	if l.TrainingHours < 0 || l.TrainingHours > 10000 {
		bad = append(bad, RuleProblem{"training_hours", fmt.Sprintf("%d; 0 to 10000", l.TrainingHours)})
	}
	if l.FeeCents < 0 {
		bad = append(bad, RuleProblem{"fee_cents", fmt.Sprintf("%d; 0 or more", l.FeeCents)})
	}
	var comps []string
	for _, c := range componentOrder {
		if slices.Contains(l.Components, string(c)) {
			comps = append(comps, string(c))
		}
	}
	for _, c := range l.Components {
		if !slices.Contains(componentOrder, exam.Component(c)) {
			bad = append(bad, RuleProblem{"components", fmt.Sprintf("%q is not theory, practical or review", c)})
		}
	}
	if !slices.Contains(comps, string(exam.Theory)) {
		bad = append(bad, RuleProblem{"components", "every level includes the theory exam"})
	}
	if len(bad) > 0 {
		return &RulesError{bad}
	}
	l.Components = comps
	return nil
}

// LevelRules is a level with its settings, as the rules screen shows it.
type LevelRules struct {
	ID     int64  `json:"id"`
	Code   string `json:"code"`
	NameZh string `json:"name_zh"`
	NameEn string `json:"name_en"`
	LevelSettings
}

// ProgrammeRules is a programme's whole rule set: its rules and its levels.
type ProgrammeRules struct {
	ID     int64        `json:"id"`
	Code   string       `json:"code"`
	NameZh string       `json:"name_zh"`
	NameEn string       `json:"name_en"`
	Rules  Policy       `json:"rules"`
	Levels []LevelRules `json:"levels"`
}

// Rules returns a programme's rules (defaults filled in) and its levels.
func (s *Service) Rules(ctx context.Context, programmeID int64) (*ProgrammeRules, error) {
	db := s.db.WithContext(ctx)
	var prog store.Programme
	if err := db.Take(&prog, programmeID).Error; err != nil {
		return nil, err
	}
	p, err := ParsePolicy(prog.Rules)
	if err != nil {
		return nil, err
	}
	out := &ProgrammeRules{ID: prog.ID, Code: prog.Code, NameZh: prog.NameZh, NameEn: prog.NameEn, Rules: p, Levels: []LevelRules{}}
	var levels []store.Level
	if err := db.Where("programme_id = ?", programmeID).Order("rank").Find(&levels).Error; err != nil {
		return nil, err
	}
	for _, l := range levels {
		lr := LevelRules{ID: l.ID, Code: l.Code, NameZh: l.NameZh, NameEn: l.NameEn,
			LevelSettings: LevelSettings{TrainingHours: l.TrainingHours, FeeCents: l.FeeCents}}
		if err := json.Unmarshal([]byte(l.Components), &lr.Components); err != nil {
			return nil, fmt.Errorf("certify: level %d components: %w", l.ID, err)
		}
		out.Levels = append(out.Levels, lr)
	}
	return out, nil
}

// decodeOver decodes a change onto current values: rules not sent keep
// their value, an unknown rule is refused by name.
func decodeOver(change []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(change))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		rule, text := "", err.Error()
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			// The field's path goes through the embedded exam.Rules.
			rule = ute.Field[strings.LastIndex(ute.Field, ".")+1:]
			text = fmt.Sprintf("a %s is expected, not a %s", ute.Type, ute.Value)
		} else if strings.HasPrefix(text, "json: unknown field ") {
			rule = strings.Trim(strings.TrimPrefix(text, "json: unknown field "), `"`)
			text = "no such rule"
		}
		return &RulesError{[]RuleProblem{{rule, text}}}
	}
	return nil
}

// SetRules changes a programme's rules: change is a JSON object of the rules
// to change (those not named keep their value). Every rule is validated
// first, and a refusal changes nothing. The change is audited with the old
// and new value of each rule changed; it applies to decisions made from now
// on (fees already charged and results already decided stay).
func (s *Service) SetRules(ctx context.Context, actorID, programmeID int64, change []byte) (*ProgrammeRules, error) {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lock(tx, "programmes", programmeID); err != nil {
			return err
		}
		var prog store.Programme
		if err := tx.Take(&prog, programmeID).Error; err != nil {
			return err
		}
		old, err := ParsePolicy(prog.Rules)
		if err != nil {
			return err
		}
		// A list sent replaces the list (json resets a slice it decodes into).
		p := old
		p.Holidays, p.WorkingWeekends = slices.Clone(old.Holidays), slices.Clone(old.WorkingWeekends)
		if err := decodeOver(change, &p); err != nil {
			return err
		}
		if err := ValidatePolicy(&p); err != nil {
			return err
		}
		before, after := diff(old, p)
		if len(after) == 0 {
			return nil
		}
		// Keep any keys of the stored JSON that the certificate programme
		// does not know, so other readers of the rules lose nothing.
		stored := map[string]json.RawMessage{}
		if strings.TrimSpace(prog.Rules) != "" {
			if err := json.Unmarshal([]byte(prog.Rules), &stored); err != nil {
				return err
			}
		}
		b, _ := json.Marshal(p)
		var mine map[string]json.RawMessage
		json.Unmarshal(b, &mine)
		for k, v := range mine {
			stored[k] = v
		}
		b, _ = json.Marshal(stored)
		if err := tx.Model(&prog).Update("rules", string(b)).Error; err != nil {
			return err
		}
		return audit(tx, s.now(), actorID, "programme_rules_changed", "programme", programmeID, map[string]any{"old": before, "new": after})
	})
	if err != nil {
		return nil, err
	}
	return s.Rules(ctx, programmeID)
}

// diff returns the values before and after of each top-level field of a and
// b (as JSON) that differs.
func diff(a, b any) (before, after map[string]any) {
	var ma, mb map[string]any
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	json.Unmarshal(ja, &ma)
	json.Unmarshal(jb, &mb)
	before, after = map[string]any{}, map[string]any{}
	for k, v := range mb {
		if !reflect.DeepEqual(ma[k], v) {
			before[k], after[k] = ma[k], v
		}
	}
	return before, after
}

// SetLevel changes a level's training hours, fee or components; change is
// a JSON object of the settings to change. It is validated first (a
// refusal changes nothing) and audited with old and new values. It applies
// to registrations made from now on: a registration keeps the fee it was
// charged and the components it was opened with.
func (s *Service) SetLevel(ctx context.Context, actorID, levelID int64, change []byte) (*LevelRules, error) {
	var out *LevelRules
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lock(tx, "levels", levelID); err != nil {
			return err
		}
		var row store.Level
		if err := tx.Take(&row, levelID).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrUnknownLevel
			}
			return err
		}
		old := LevelSettings{TrainingHours: row.TrainingHours, FeeCents: row.FeeCents}
		if err := json.Unmarshal([]byte(row.Components), &old.Components); err != nil {
			return err
		}
		l := old
		l.Components = slices.Clone(old.Components)
		if err := decodeOver(change, &l); err != nil {
			return err
		}
		if err := ValidateLevel(&l); err != nil {
			return err
		}
		out = &LevelRules{ID: row.ID, Code: row.Code, NameZh: row.NameZh, NameEn: row.NameEn, LevelSettings: l}
		before, after := diff(old, l)
		if len(after) == 0 {
			return nil
		}
		comps, _ := json.Marshal(l.Components)
		if err := tx.Model(&row).Updates(map[string]any{"training_hours": l.TrainingHours, "fee_cents": l.FeeCents, "components": string(comps)}).Error; err != nil {
			return err
		}
		return audit(tx, s.now(), actorID, "level_rules_changed", "level", levelID, map[string]any{"level": row.Code, "old": before, "new": after})
	})
	return out, err
}
