//go:build linux

package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyMappingOf(t *testing.T) {
	const exe = "/podns"
	tests := []struct {
		name, line string
		ok         bool
		start, end uintptr
	}{
		{"code", "00400000-007ef000 r-xp 00000000 fe:00 9978393   /podns", true, 0x400000, 0x7ef000},
		{"constants", "007ef000-00bfa000 r--p 003ef000 fe:00 9978393   /podns", true, 0x7ef000, 0xbfa000},
		{"replaced binary", "00400000-007ef000 r-xp 00000000 fe:00 9978393   /podns (deleted)", true, 0x400000, 0x7ef000},
		{"data is written", "00bfa000-00c59000 rw-p 007fa000 fe:00 9978393   /podns", false, 0, 0},
		{"anonymous", "00c59000-02c9b000 rw-p 00000000 00:00 0", false, 0, 0},
		{"another file", "7f00000000-7f00001000 r--p 00000000 fe:00 12   /podns-other", false, 0, 0},
		{"a path with a space", "7f00000000-7f00001000 r--p 00000000 fe:00 12   /my podns", false, 0, 0},
		{"not readable", "7f00000000-7f00001000 ---p 00000000 fe:00 12   /podns", false, 0, 0},
		{"bad range", "7f00001000-7f00000000 r--p 00000000 fe:00 12   /podns", false, 0, 0},
		{"short line", "00400000-007ef000 r-xp", false, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end, ok := readOnlyMappingOf(tt.line, exe)
			if ok != tt.ok || start != tt.start || end != tt.end {
				t.Errorf("got %#x-%#x %v, want %#x-%#x %v", start, end, ok, tt.start, tt.end, tt.ok)
			}
		})
	}
	for _, path := range []string{"/my podns", "/my  podns", "/my podns "} {
		if _, _, ok := readOnlyMappingOf("7f00000000-7f00001000 r--p 00000000 fe:00 12   "+path, path); !ok {
			t.Errorf("a path with spaces, %q: not matched", path)
		}
	}
	if _, _, ok := readOnlyMappingOf("7f00000000-7f00001000 r--p 00000000 fe:00 12   /my  podns", "/my podns"); ok {
		t.Errorf("a path with two spaces matched the one with one")
	}
}

// TestReleaseBinaryPages checks that the test binary's own read-only pages leave its RSS, and that it
// goes on running what it released.
func TestReleaseBinaryPages(t *testing.T) {
	before := readOnlyRSS(t)
	n, err := releaseBinaryPages()
	after := readOnlyRSS(t)
	if err != nil {
		t.Fatalf("releaseBinaryPages: %v", err)
	}
	if n == 0 {
		t.Fatalf("releaseBinaryPages covered no bytes")
	}
	if after > before*3/4 {
		t.Errorf("RSS of the binary's read-only mappings %d kB after the release, %d kB before: want at most three quarters", after, before)
	}
	t.Logf("RSS of the binary's read-only mappings: %d kB before, %d kB after", before, after)
	// Code and constants come back on use.
	if got := strconv.Quote(strings.Repeat("é", 2)); got != `"éé"` {
		t.Errorf("got %s after the release, want \"éé\"", got)
	}
}

// readOnlyRSS sums, from /proc/self/smaps, the RSS in kB of the mappings releaseBinaryPages releases.
func readOnlyRSS(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Skipf("no /proc/self/exe: %v", err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	kb, ours := 0, false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSuffix(line, "\n")
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], "-") {
			_, _, ours = readOnlyMappingOf(line, exe) // a mapping's first line
			continue
		}
		if v, ok := strings.CutPrefix(line, "Rss:"); ok && ours {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("smaps Rss %q: %v", v, err)
			}
			kb += n
		}
	}
	if kb == 0 {
		t.Skip("no RSS counted for the binary's read-only mappings")
	}
	return kb
}
