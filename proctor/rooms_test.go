package proctor

import (
	"errors"
	"testing"
)

func TestPlanRooms(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		rules Invigilation
		want  []RoomPlan
	}{
		{"none", 0, DefaultInvigilation, nil},
		{"one small room still has two invigilators", 3, DefaultInvigilation, []RoomPlan{{3, 2}}},
		{"exactly one grid", 15, DefaultInvigilation, []RoomPlan{{15, 2}}},
		{"the demo: two rooms of 15", 30, DefaultInvigilation, []RoomPlan{{15, 2}, {15, 2}}},
		{"uneven spreads evenly", 31, DefaultInvigilation, []RoomPlan{{11, 2}, {10, 2}, {10, 2}}},
		{"big rooms need more invigilators", 100, Invigilation{Ratio: 15, MinPerRoom: 2, RoomCapacity: 50}, []RoomPlan{{50, 4}, {50, 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PlanRooms(tt.n, tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			total := 0
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
				if err := CheckRoom(got[i].Candidates, got[i].Invigilators, tt.rules); err != nil {
					t.Errorf("room %d breaks a rule: %v", i, err)
				}
				total += got[i].Candidates
			}
			if total != tt.n {
				t.Errorf("plan seats %d of %d", total, tt.n)
			}
		})
	}
	if _, err := PlanRooms(10, Invigilation{}); !errors.Is(err, ErrBadRules) {
		t.Errorf("zero rules: %v", err)
	}
}

func TestPlanRoomsLarge(t *testing.T) {
	for _, n := range []int{1, 14, 16, 199, 200, 5000} {
		plan, _ := PlanRooms(n, DefaultInvigilation)
		total, lo, hi := 0, n, 0
		for _, r := range plan {
			total += r.Candidates
			lo, hi = min(lo, r.Candidates), max(hi, r.Candidates)
			if r.Candidates > 15 || r.Invigilators != 2 {
				t.Fatalf("n=%d: room %+v", n, r)
			}
		}
		if total != n || hi-lo > 1 {
			t.Fatalf("n=%d: total %d, sizes %d..%d", n, total, lo, hi)
		}
	}
}

func TestCheckRoomNamesTheRule(t *testing.T) {
	tests := []struct {
		cands, invs int
		want        error
	}{
		{15, 2, nil},
		{30, 2, nil},
		{31, 2, ErrRatio},
		{5, 1, ErrTooFewInvigilators},
		{0, 0, ErrTooFewInvigilators},
	}
	for _, tt := range tests {
		err := CheckRoom(tt.cands, tt.invs, DefaultInvigilation)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("CheckRoom(%d, %d) = %v, want %v", tt.cands, tt.invs, err, tt.want)
		}
	}
}

func TestBalance(t *testing.T) {
	got := BalanceIndexes(15, 2)
	load := map[int]int{}
	for _, i := range got {
		load[i]++
	}
	if load[0] != 8 || load[1] != 7 {
		t.Fatalf("loads %v, want 8 and 7", load)
	}
	if BalanceIndexes(3, 0) != nil {
		t.Fatal("no invigilators should give no assignment")
	}
}
