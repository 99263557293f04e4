package upstream

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/internal/timetest"
)

// heldConn is a client connection whose reads after the first few wait until released: the
// connection's reader does not run, as when podns is short of CPU, while the server's answers reach
// the socket.
type heldConn struct {
	*net.TCPConn // SyscallConn too: the pool's direct writes and socket queries work as in production
	reads        atomic.Int32
	free         int32 // reads that go through before the hold
	released     chan struct{}
}

func (c *heldConn) Read(b []byte) (int, error) {
	if c.reads.Add(1) > c.free {
		<-c.released
	}
	return c.TCPConn.Read(b)
}

// TestNoDialForUnreadAnswer: a query that finds the only connection silent for longer than busyAfter
// does not dial a second one when the answer is already in the socket, unread (podns short of CPU: its
// reader has not run yet); it waits, and takes the connection once the reader delivers. Without the
// check the pool dials: one more connection at the cluster DNS per stall of podns's own.
func TestNoDialForUnreadAnswer(t *testing.T) {
	fs := startFake(t, script{serial: true})
	released := make(chan struct{})
	var dialed atomic.Int32
	var d net.Dialer
	c := newTestClient(t, Config{Servers: []string{fs.addr}, HedgeAfter: time.Second,
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil || dialed.Add(1) > 1 {
				return nc, err // a second connection is the failure this test looks for
			}
			// The reader's first read returns the first answer; the next one is held.
			return &heldConn{TCPConn: nc.(*net.TCPConn), free: 1, released: released}, nil
		}})
	if r := askAsync(c, "first.test."); r.err != nil {
		t.Fatalf("first query: %v", r.err)
	}
	second := newReceiver()
	c.ExchangeAsync(query("second.test.", dns.TypeA), second)
	// The answer reaches the socket at once; the connection looks blocked after busyAfter (at least
	// minBusyAfter, and the latency of one loopback answer is far below it).
	timetest.WaitFor(t, func() bool { return fs.queries.Load() == 2 })
	time.Sleep(10 * c.pools[0].busyAfter())
	third := newReceiver()
	c.ExchangeAsync(query("third.test.", dns.TypeA), third)
	time.Sleep(10 * c.pools[0].busyAfter()) // the wake at busyAfter has picked again
	if got := c.Stats().ConnsOpened; got != 1 {
		t.Errorf("got %d connections opened while the answer waited unread, want 1", got)
	}
	close(released)
	for name, r := range map[string]*receiver{"second": second, "third": third} {
		select {
		case got := <-r.ch:
			if got.err != nil {
				t.Errorf("%s query: %v", name, got.err)
			}
		case <-time.After(2 * time.Second):
			t.Errorf("%s query: no answer within 2 s of the reader's release", name)
		}
	}
	if got := c.Stats().ConnsOpened; got != 1 {
		t.Errorf("got %d connections opened, want 1", got)
	}
}
