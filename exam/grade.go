package exam

import (
	"math"
	"slices"
)

// Score gives the points a chosen set of options earns. Single choice and
// true/false: all or nothing. Multiple choice: all or nothing by default;
// with partial credit, any wrong option earns nothing and otherwise each
// correct option chosen earns its share.
func Score(kind Kind, key, chosen []int, points float64, partial bool) float64 {
	if len(chosen) == 0 {
		return 0
	}
	if kind != Multiple || !partial {
		if sameSet(key, chosen) {
			return points
		}
		return 0
	}
	hits := 0
	for _, c := range chosen {
		if !slices.Contains(key, c) {
			return 0
		}
		hits++
	}
	return round2(points * float64(hits) / float64(len(key)))
}

func sameSet(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// checkValue says whether chosen is a well-formed answer to a question of
// kind with n options: distinct option ids in range, one for single choice
// and true/false. An empty answer clears the question.
func checkValue(kind Kind, n int, chosen []int) error {
	if len(chosen) > n {
		return ErrBadValue
	}
	if (kind == Single || kind == TrueFalse) && len(chosen) > 1 {
		return ErrBadValue
	}
	seen := map[int]bool{}
	for _, c := range chosen {
		if c < 0 || c >= n || seen[c] {
			return ErrBadValue
		}
		seen[c] = true
	}
	return nil
}
