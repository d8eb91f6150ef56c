package media

import (
	"slices"
	"time"
)

// sound reads sustained sound on a microphone from the sizes of its Opus
// packets, with no decoding: the encoder, at a variable bit rate, spends
// few bytes a frame on silence and many more on speech (and on music or
// loud noise: it cannot tell them apart, which is why this is only a
// second opinion beside the page's voice model). Each second's mean
// payload is compared with the track's own quiet floor, the quietest
// second of the last minute but at least soundFloor bytes (digital silence
// costs 3 bytes a frame, yet an encoder coming out of speech spends about
// 30 on it): a second at soundRatio times the floor is loud. Browsers
// suppress steady room noise before encoding; where it is not, the floor
// rises with it and only speech well above it counts. soundOn loud seconds
// in a row start sound; soundOff quiet ones end it.
type sound struct {
	second      time.Time // start of the second being summed
	n, bytes    int
	means       []float64 // the last minute's second means
	loud, quiet int
	on          bool
}

const (
	soundRatio = 1.5
	soundFloor = 30 // bytes a packet
	soundOn    = 2
	soundOff   = 2
)

// add counts one packet and returns "start" or "end" when sound begins or
// ends with the second it closes, or "".
func (s *sound) add(at time.Time, size int) string {
	if s.second.IsZero() {
		s.second = at
	}
	phase := ""
	for at.Sub(s.second) >= time.Second {
		phase = s.close()
		s.second = s.second.Add(time.Second)
	}
	s.n++
	s.bytes += size
	return phase
}

// close judges the finished second.
func (s *sound) close() string {
	if s.n == 0 {
		return "" // no packets: the track paused, nothing to judge
	}
	mean := float64(s.bytes) / float64(s.n)
	s.n, s.bytes = 0, 0
	s.means = append(s.means, mean)
	if len(s.means) > 60 {
		s.means = s.means[1:]
	}
	floor := max(slices.Min(s.means), soundFloor)
	if mean >= floor*soundRatio {
		s.loud, s.quiet = s.loud+1, 0
	} else {
		s.quiet, s.loud = s.quiet+1, 0
	}
	switch {
	case !s.on && s.loud >= soundOn:
		s.on = true
		return "start"
	case s.on && s.quiet >= soundOff:
		s.on = false
		return "end"
	}
	return ""
}
