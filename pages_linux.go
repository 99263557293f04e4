//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// releaseBinaryPages takes the pages of podns's own binary out of its page tables, for the segments
// that are never written (code and constant data), and returns how many bytes of address space it
// covered.
//
// Why: Go's package initialization runs code and reads tables spread over the whole binary (the init
// functions of some 150 packages, and the unwinder's tables for whatever is on a stack when one grows),
// and the kernel maps the 64 KiB around each page a fault touches (fault-around). So before main runs,
// two thirds of the binary counts in podns's RSS, though serving uses a fraction of it. The pages stay
// in the page cache, shared by every pod on the node that runs the image; what podns touches again is
// mapped again by a minor fault. The writable data segment is left alone: MADV_DONTNEED on it would
// reset podns's variables to the file's contents.
func releaseBinaryPages() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("finding podns's binary: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("reading podns's mappings: %w", err)
	}
	released := 0
	for line := range bytes.Lines(maps) {
		start, end, ok := readOnlyMappingOf(string(bytes.TrimSuffix(line, []byte("\n"))), exe)
		if !ok {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, start, end-start, syscall.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("releasing %x-%x: %w", start, end, errno)
		}
		released += int(end - start)
	}
	return released, nil
}

// readOnlyMappingOf parses one line of /proc/self/maps ("start-end perms offset dev inode path") and
// says whether it maps the file exe readable and not writable.
func readOnlyMappingOf(line, exe string) (start, end uintptr, ok bool) {
	var f [5]string
	rest := line
	for i := range f {
		rest = strings.TrimLeft(rest, " ")
		var found bool
		if f[i], rest, found = strings.Cut(rest, " "); !found || f[i] == "" {
			return 0, 0, false
		}
	}
	if len(f[1]) < 2 || f[1][0] != 'r' || f[1][1] != '-' {
		return 0, 0, false
	}
	// The path is the rest of the line after the padding, spaces and all (the kernel writes it as it
	// is, and appends " (deleted)" once the file is replaced).
	if path := strings.TrimLeft(rest, " "); path != exe && path != exe+" (deleted)" {
		return 0, 0, false
	}
	lo, hi, found := strings.Cut(f[0], "-")
	s, err1 := strconv.ParseUint(lo, 16, 64)
	e, err2 := strconv.ParseUint(hi, 16, 64)
	if !found || err1 != nil || err2 != nil || e <= s {
		return 0, 0, false
	}
	return uintptr(s), uintptr(e), true
}
