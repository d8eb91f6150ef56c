// Package proctor turns violation signals into flags, keeps rooms and
// invigilator assignment within the programme's rules, and serves the
// invigilator console.
package proctor

import (
	"fmt"

	"github.com/examhall/examhall/store"
)

// Invigilation holds a programme's invigilation rules (store.Invigilation).
type Invigilation = store.Invigilation

// DefaultInvigilation is the certificate's rule: one invigilator per 15
// candidates and at least two per room; a room holds one grid of 15.
var DefaultInvigilation = Invigilation{Ratio: 15, MinPerRoom: 2, RoomCapacity: 15}

func validRules(r Invigilation) error {
	if r.Ratio < 1 || r.MinPerRoom < 1 || r.RoomCapacity < 1 {
		return ErrBadRules
	}
	return nil
}

// RoomPlan is the size of one room in a plan.
type RoomPlan struct {
	Candidates   int
	Invigilators int
}

// PlanRooms spreads n candidates over as few rooms as the capacity allows,
// evenly (sizes differ by at most one), and gives each room the invigilators
// the rules need.
func PlanRooms(n int, r Invigilation) ([]RoomPlan, error) {
	if err := validRules(r); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	rooms := (n + r.RoomCapacity - 1) / r.RoomCapacity
	plan := make([]RoomPlan, rooms)
	for i := range plan {
		size := n / rooms
		if i < n%rooms {
			size++
		}
		plan[i] = RoomPlan{Candidates: size, Invigilators: max(r.MinPerRoom, (size+r.Ratio-1)/r.Ratio)}
	}
	return plan, nil
}

// CheckRoom says whether a room with these candidates and invigilators meets
// the rules, naming the rule it breaks.
func CheckRoom(candidates, invigilators int, r Invigilation) error {
	if err := validRules(r); err != nil {
		return err
	}
	if invigilators < r.MinPerRoom {
		return fmt.Errorf("%w: the room has %d", ErrTooFewInvigilators, invigilators)
	}
	if candidates > invigilators*r.Ratio {
		return fmt.Errorf("%w: %d candidates need at least %d invigilators", ErrRatio, candidates, (candidates+r.Ratio-1)/r.Ratio)
	}
	return nil
}

// BalanceIndexes assigns candidates (by position) to invigilators (by position) in
// turn, so loads differ by at most one. It returns, for each candidate, the
// index of their responsible invigilator.
func BalanceIndexes(candidates, invigilators int) []int {
	if invigilators <= 0 {
		return nil
	}
	out := make([]int, candidates)
	for i := range out {
		out[i] = i % invigilators
	}
	return out
}
