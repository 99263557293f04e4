//go:build !linux

package upstream

import (
	"net"
	"sync/atomic"
)

// quickAck is Linux's TCP_QUICKACK re-armed before reads (quickack_linux.go); elsewhere a no-op.
func quickAck(nc net.Conn, _ *atomic.Int32) net.Conn { return nc }
