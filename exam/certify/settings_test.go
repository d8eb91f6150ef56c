package certify

import (
	"errors"
	"slices"
	"testing"
)

// Every rule an admin may set is refused out of its bounds, naming it.
func TestValidatePolicy(t *testing.T) {
	for _, c := range []struct {
		what string
		set  func(p *Policy)
		rule string // "" when valid
	}{
		{"the defaults", func(p *Policy) {}, ""},
		{"pass mark 0", func(p *Policy) { p.PassMark = 0 }, ""},
		{"pass mark 100", func(p *Policy) { p.PassMark = 100 }, ""},
		{"pass mark 101", func(p *Policy) { p.PassMark = 101 }, "pass_mark"},
		{"pass mark -1", func(p *Policy) { p.PassMark = -1 }, "pass_mark"},
		{"a panel of 5", func(p *Policy) { p.MinPanelSize = 5 }, ""},
		{"a panel of 4", func(p *Policy) { p.MinPanelSize = 4 }, "min_panel_size"},
		{"a panel of 1", func(p *Policy) { p.MinPanelSize = 1 }, "min_panel_size"},
		{"no retakes", func(p *Policy) { p.RetakesPerComponent = 0 }, ""},
		{"negative retakes", func(p *Policy) { p.RetakesPerComponent = -1 }, "retakes_per_component"},
		{"free retakes", func(p *Policy) { p.RetakeFeeCents = 0 }, ""},
		{"a negative retake fee", func(p *Policy) { p.RetakeFeeCents = -1 }, "retake_fee_cents"},
		{"threshold 0", func(p *Policy) { p.DedicatedRetakeThreshold = 0 }, ""},
		{"a negative threshold", func(p *Policy) { p.DedicatedRetakeThreshold = -5 }, "dedicated_retake_threshold"},
		{"one working day", func(p *Policy) { p.SubmissionWorkingDays = 1 }, ""},
		{"no working days", func(p *Policy) { p.SubmissionWorkingDays = 0 }, "submission_working_days"},
		{"ten years of working days", func(p *Policy) { p.SubmissionWorkingDays = 2600 }, "submission_working_days"},
		{"median", func(p *Policy) { p.ScoreMethod = Median }, ""},
		{"mode", func(p *Policy) { p.ScoreMethod = "mode" }, "score_method"},
		{"holidays", func(p *Policy) { p.Holidays = []string{"2026-10-01", "2026-10-02"} }, ""},
		{"a holiday not a date", func(p *Policy) { p.Holidays = []string{"2026-13-01"} }, "holidays"},
		{"a holiday in another format", func(p *Policy) { p.Holidays = []string{"01/10/2026"} }, "holidays"},
		{"a working Sunday", func(p *Policy) { p.WorkingWeekends = []string{"2026-09-27"} }, ""},
		{"a working weekend on a Monday", func(p *Policy) { p.WorkingWeekends = []string{"2026-09-28"} }, "working_weekends"},
		{"a working weekend that is a holiday", func(p *Policy) {
			p.Holidays, p.WorkingWeekends = []string{"2026-10-03"}, []string{"2026-10-03"}
		}, "working_weekends"},
		{"uploads of 64 KiB", func(p *Policy) { p.MaxUploadBytes = MinUploadLimit }, ""},
		{"uploads of 1 KiB", func(p *Policy) { p.MaxUploadBytes = 1024 }, "max_upload_bytes"},
		{"uploads of 1 GiB", func(p *Policy) { p.MaxUploadBytes = 1 << 30 }, "max_upload_bytes"},
		{"bachelor or above", func(p *Policy) { p.MinEducation = "bachelor" }, ""},
		{"an unknown education", func(p *Policy) { p.MinEducation = "kindergarten" }, "min_education"},
		{"ratio 1", func(p *Policy) { p.Ratio = 1 }, ""},
		{"ratio 0", func(p *Policy) { p.Ratio = 0 }, "invigilator_ratio"},
		{"no invigilator per room", func(p *Policy) { p.MinPerRoom = 0 }, "min_invigilators_per_room"},
		{"rooms of 0", func(p *Policy) { p.RoomCapacity = 0 }, "room_capacity"},
		{"a theory exam of 0 minutes", func(p *Policy) { p.TheoryMinutes = 0 }, "theory_minutes"},
	} {
		p := policy(t, "{}")
		c.set(&p)
		err := ValidatePolicy(&p)
		var re *RulesError
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%s: refused: %v", c.what, err)
		case c.rule != "" && !errors.As(err, &re):
			t.Errorf("%s: %v, want a RulesError naming %s", c.what, err, c.rule)
		case c.rule != "" && (len(re.Problems) != 1 || re.Problems[0].Rule != c.rule || !errors.Is(err, ErrRuleValue)):
			t.Errorf("%s: %+v, want one problem with %s", c.what, re.Problems, c.rule)
		}
	}
	// Several wrong rules are all named; the calendar is sorted and deduplicated.
	p := policy(t, "{}")
	p.PassMark, p.MinPanelSize = 120, 2
	if err := ValidatePolicy(&p); err == nil || len(err.(*RulesError).Problems) != 2 {
		t.Errorf("two wrong rules: %v", err)
	}
	p = policy(t, "{}")
	p.Holidays = []string{"2026-10-02", " 2026-10-01", "2026-10-02"}
	if err := ValidatePolicy(&p); err != nil || !slices.Equal(p.Holidays, []string{"2026-10-01", "2026-10-02"}) {
		t.Errorf("calendar not normalised: %v %v", p.Holidays, err)
	}
}

func TestValidateLevel(t *testing.T) {
	for _, c := range []struct {
		what  string
		l     LevelSettings
		rule  string
		comps []string
	}{
		{"intermediate", LevelSettings{72, 1200_00, []string{"theory", "practical"}}, "", []string{"theory", "practical"}},
		{"components out of order", LevelSettings{108, 1600_00, []string{"review", "theory", "review"}}, "", []string{"theory", "review"}},
		{"free, no hours", LevelSettings{0, 0, []string{"theory"}}, "", []string{"theory"}},
		{"negative hours", LevelSettings{-1, 0, []string{"theory"}}, "training_hours", nil},
		{"a negative fee", LevelSettings{48, -100, []string{"theory"}}, "fee_cents", nil},
		{"no theory", LevelSettings{48, 800_00, []string{"practical"}}, "components", nil},
		{"no components", LevelSettings{48, 800_00, nil}, "components", nil},
		{"an unknown component", LevelSettings{48, 800_00, []string{"theory", "interview"}}, "components", nil},
	} {
		err := ValidateLevel(&c.l)
		var re *RulesError
		switch {
		case c.rule == "" && (err != nil || !slices.Equal(c.l.Components, c.comps)):
			t.Errorf("%s: %v %v", c.what, err, c.l.Components)
		case c.rule != "" && (!errors.As(err, &re) || re.Problems[0].Rule != c.rule):
			t.Errorf("%s: %v, want %s named", c.what, err, c.rule)
		}
	}
}
