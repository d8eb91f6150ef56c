package exam

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/examhall/examhall/store"
)

// Blueprint says how a paper is drawn from a bank: sections of questions of
// one kind (and optionally one tag), each question worth Points.
type Blueprint struct {
	Sections []Section `json:"sections"`
}

// Section is one part of a blueprint.
type Section struct {
	TitleZh string  `json:"title_zh"`
	TitleEn string  `json:"title_en"`
	Kind    Kind    `json:"kind"`
	Tag     string  `json:"tag,omitempty"`
	Count   int     `json:"count"`
	Points  float64 `json:"points"`
}

// ParseBlueprint reads and checks a blueprint: points must sum to 100.
func ParseBlueprint(s string) (*Blueprint, error) {
	var b Blueprint
	if err := json.Unmarshal([]byte(s), &b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBlueprint, err)
	}
	total := 0.0
	for i, sec := range b.Sections {
		if sec.Count < 1 || sec.Points <= 0 {
			return nil, fmt.Errorf("%w: section %d needs a positive count and points", ErrBadBlueprint, i+1)
		}
		switch sec.Kind {
		case Single, Multiple, TrueFalse:
		default:
			return nil, fmt.Errorf("%w: section %d has kind %q", ErrBadBlueprint, i+1, sec.Kind)
		}
		total += float64(sec.Count) * sec.Points
	}
	if math.Abs(total-100) > 1e-9 {
		return nil, fmt.Errorf("%w: points sum to %g, not 100", ErrBadBlueprint, total)
	}
	return &b, nil
}

// Paper is one candidate's drawn paper: the questions in their order, each
// with the order its options are shown in. It never holds the key.
type Paper struct {
	Items []PaperItem `json:"items"`
}

// PaperItem is one question on a paper. Perm[i] is the original index of the
// option shown i-th.
type PaperItem struct {
	QuestionID int64   `json:"q"`
	Section    int     `json:"s"`
	Points     float64 `json:"p"`
	Perm       []int   `json:"o"`
}

// Draw draws a paper from the bank with the given seed: the same seed, bank
// and blueprint always give the same paper. Questions keep their sections;
// within a section their order is shuffled, and so are the options of
// choice questions (true/false keeps 正确 before 错误).
func Draw(b *Blueprint, bank []store.Question, seed int64) (*Paper, error) {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	used := map[int64]bool{}
	p := &Paper{}
	for si, sec := range b.Sections {
		var pool []store.Question
		for _, q := range bank {
			if Kind(q.Kind) == sec.Kind && !used[q.ID] && (sec.Tag == "" || hasTag(q.Tags, sec.Tag)) {
				pool = append(pool, q)
			}
		}
		if len(pool) < sec.Count {
			return nil, fmt.Errorf("%w: section %d needs %d %s questions, the bank has %d", ErrBadBlueprint, si+1, sec.Count, sec.Kind, len(pool))
		}
		slices.SortFunc(pool, func(a, b store.Question) int { return int(a.ID - b.ID) })
		r.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
		for _, q := range pool[:sec.Count] {
			used[q.ID] = true
			var opts []string
			json.Unmarshal([]byte(q.Options), &opts)
			perm := make([]int, len(opts))
			for i := range perm {
				perm[i] = i
			}
			if Kind(q.Kind) != TrueFalse {
				r.Shuffle(len(perm), func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			}
			p.Items = append(p.Items, PaperItem{QuestionID: q.ID, Section: si, Points: sec.Points, Perm: perm})
		}
	}
	return p, nil
}

func hasTag(tagsJSON, tag string) bool {
	var tags []string
	json.Unmarshal([]byte(tagsJSON), &tags)
	return slices.Contains(tags, tag)
}

// QuestionView is a question as the candidate sees it: options in their
// paper's order, each with a stable id (its original index), and no key.
type QuestionView struct {
	ID      int64        `json:"id"`
	Section int          `json:"section"`
	Kind    Kind         `json:"kind"`
	Points  float64      `json:"points"`
	Stem    string       `json:"stem"`
	Options []OptionView `json:"options"`
}

// OptionView is one option of a question.
type OptionView struct {
	ID   int    `json:"id"`
	Text string `json:"text"`
}

// SectionView is a section title.
type SectionView struct {
	TitleZh string `json:"title_zh"`
	TitleEn string `json:"title_en"`
}

// View renders a paper for the candidate.
func (p *Paper) View(b *Blueprint, questions map[int64]store.Question) ([]SectionView, []QuestionView) {
	secs := make([]SectionView, len(b.Sections))
	for i, s := range b.Sections {
		secs[i] = SectionView{s.TitleZh, s.TitleEn}
	}
	qs := make([]QuestionView, 0, len(p.Items))
	for _, it := range p.Items {
		q := questions[it.QuestionID]
		var opts []string
		json.Unmarshal([]byte(q.Options), &opts)
		ov := make([]OptionView, len(it.Perm))
		for i, orig := range it.Perm {
			ov[i] = OptionView{ID: orig, Text: opts[orig]}
		}
		qs = append(qs, QuestionView{ID: q.ID, Section: it.Section, Kind: Kind(q.Kind), Points: it.Points, Stem: q.Stem, Options: ov})
	}
	return secs, qs
}
