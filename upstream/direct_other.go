//go:build !linux

package upstream

import "net"

// directFD is Linux's direct socket write (direct_linux.go); elsewhere the writer goroutine writes
// every query.
type directFD struct{}

func newDirectFD(net.Conn) *directFD { return nil }

func (*directFD) write([]byte) (int, error) { return 0, nil }

// unacked is known only on Linux (SIOCOUTQ); elsewhere a silent server is left to the hedges.
func (*directFD) unacked() bool { return false }

// unread is known only on Linux (SIOCINQ); elsewhere a connection silent for busyAfter is taken as
// busy.
func (*directFD) unread() bool { return false }
