package upstream

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/internal/timetest"
)

// TestQueuedQueryThatWaited: a query of Queue that finds every connection busy waits in line; when
// one comes free it is written at once, not left for a Flush that already happened.
func TestQueuedQueryThatWaited(t *testing.T) {
	fs := startFake(t, script{serial: true, delay: func(n int64) time.Duration {
		if n == 1 {
			return 100 * time.Millisecond // holds the one connection
		}
		return 0
	}})
	c := newTestClient(t, Config{Servers: []string{fs.addr}, MaxConnsPerServer: 1, HedgeAfter: time.Second})
	first, second := newReceiver(), newReceiver()
	c.ExchangeAsync(query("slow.test.", dns.TypeA), first)
	timetest.WaitFor(t, func() bool { return fs.queries.Load() == 1 })
	start := time.Now()
	c.Queue(query("queued.test.", dns.TypeA), second)
	c.Flush()
	if got := c.Stats().Waits; got != 1 {
		t.Fatalf("got %d queries waiting, want 1 (the connection is busy)", got)
	}
	for _, r := range []*receiver{first, second} {
		select {
		case got := <-r.ch:
			if got.err != nil {
				t.Fatalf("got %v, want an answer", got.err)
			}
		case <-time.After(time.Second):
			t.Fatalf("no answer within 1s: the query that waited was never written")
		}
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("got the queued query answered after %v, want soon after the first (100 ms)", took)
	}
}

// TestCloseWaitsForEveryReceive: Close returns only once every call in flight was told, timers and
// waits included; nothing is told after.
func TestCloseWaitsForEveryReceive(t *testing.T) {
	fs := startFake(t, script{blackhole: true})
	// Hedges every 5 ms keep timers firing; two connections and 30 calls keep calls waiting in line.
	c := newTestClient(t, Config{Servers: []string{fs.addr}, MaxConnsPerServer: 2, HedgeAfter: 5 * time.Millisecond})
	const n = 30
	var told, late atomic.Int32
	var closed atomic.Bool
	for i := range n {
		c.ExchangeAsync(query(fmt.Sprintf("q%d.test.", i), dns.TypeA), receiveFunc(func([]byte, error) {
			if closed.Load() {
				late.Add(1)
			}
			told.Add(1)
		}))
	}
	timetest.WaitFor(t, func() bool { return c.Stats().Hedges > 0 && c.Stats().Servers[0].Waiting > 0 })
	c.Close()
	closed.Store(true)
	if got := told.Load(); got != n {
		t.Errorf("got %d of %d receivers told when Close returned, want all", got, n)
	}
	if got := late.Load(); got != 0 {
		t.Errorf("got %d receivers told after Close returned, want 0", got)
	}
}

// receiveFunc is a Receiver from a function.
type receiveFunc func(wire []byte, err error)

func (f receiveFunc) Receive(wire []byte, err error) { f(wire, err) }
