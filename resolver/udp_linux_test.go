//go:build linux && !podnsportable

package resolver

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUDPRcvbuf: a listening socket asks for udpRcvbuf, which the kernel caps at net.core.rmem_max
// and reports doubled (its bookkeeping overhead). With the default buffer a burst of a few hundred
// queries behind a busy reader is dropped unanswered (bench/upstream miss, podns as a pod).
func TestUDPRcvbuf(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skipf("no rmem_max: %v", err)
	}
	rmemMax, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	u, err := listenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	got, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2 * min(udpRcvbuf, rmemMax); got != want {
		t.Errorf("got SO_RCVBUF %d with rmem_max %d, want %d", got, rmemMax, want)
	}
}
