//go:build !linux

package upstream

import "net"

// quickAck is Linux's TCP_QUICKACK re-armed on every read (quickack_linux.go); elsewhere a no-op.
func quickAck(nc net.Conn) net.Conn { return nc }
