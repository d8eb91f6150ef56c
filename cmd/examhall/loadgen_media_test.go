package main

import (
	"bytes"
	"testing"
)

// The load generator sends mic.ogg's audio packets, and never its headers
// (OpusHead, OpusTags), which would be undecodable packets in every
// recording at each loop of the file.
func TestReadOggSendsOnlyAudio(t *testing.T) {
	pages, err := readOgg("../../media/testdata/mic.ogg")
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 100 {
		t.Fatalf("%d packets in mic.ogg", len(pages))
	}
	for i, p := range pages {
		if bytes.HasPrefix(p, []byte("Opus")) {
			t.Fatalf("packet %d is a header: %q", i, p[:8])
		}
	}
}

// The kernel's UDP counters are read by name from /proc/net/snmp.
func TestUDPCounters(t *testing.T) {
	c := udpCounters()
	for _, k := range []string{"InDatagrams", "InErrors", "RcvbufErrors"} {
		if _, ok := c[k]; !ok {
			t.Fatalf("no %s in %v", k, c)
		}
	}
}
