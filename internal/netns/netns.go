// Package netns runs code inside a named Linux network namespace, one made by `ip netns add NAME`
// (bound at /run/netns/NAME). Tests use it to dial or listen on a namespace's own loopback from the test
// process, where no route leads from the machine's network.
package netns

import (
	"context"
	"net"
)

// Dialer returns a DialContext for net/http and friends whose connections are made inside the
// namespace: the socket is created there, and stays there for its whole life.
func Dialer(name string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := Do(name, func() error {
			var d net.Dialer
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// FreePort returns a TCP port of 127.0.0.1 that no one listens on inside the namespace (the machine's
// own loopback when name is empty), for a daemon about to be started there. The port is free when
// FreePort returns; a daemon that loses it to a race fails to start, and says so.
func FreePort(name string) (int, error) {
	var port int
	listen := func() error {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		port = l.Addr().(*net.TCPAddr).Port
		return l.Close()
	}
	var err error
	if name == "" {
		err = listen()
	} else {
		err = Do(name, listen)
	}
	return port, err
}
