package upstream

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeClock is a Config.Now that moves only when told. The janitor still
// ticks in real time, so a test advances the clock and waits a tick or two.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// settle lets the janitor run a few rounds at the current fake time.
func settle() { time.Sleep(4 * janitorTick) }

// TestJanitor: idle close, retirement at MaxAge and stall detection follow
// the injected clock, with the default timeouts.
func TestJanitor(t *testing.T) {
	t.Run("idle close at IdleTimeout", func(t *testing.T) {
		fs := startFake(t, script{})
		clk := newFakeClock()
		c := newTestClient(t, Config{Servers: []string{fs.addr}, Now: clk.Now})
		requireAllAnswered(t, runQueries(t, c, 10, 2, time.Second))
		clk.Advance(4 * time.Second)
		settle()
		if got := c.Stats().Conns; got == 0 {
			t.Fatalf("got no connections 4s after the last query, want them open (IdleTimeout 5s)")
		}
		clk.Advance(2 * time.Second)
		waitFor(t, func() bool { return c.Stats().Conns == 0 })
	})
	t.Run("retire at MaxAge", func(t *testing.T) {
		fs := startFake(t, script{})
		clk := newFakeClock()
		c := newTestClient(t, Config{Servers: []string{fs.addr}, Now: clk.Now, IdleTimeout: time.Hour})
		requireAllAnswered(t, runQueries(t, c, 10, 2, time.Second))
		opened := c.Stats().ConnsOpened
		clk.Advance(3 * time.Minute) // under MaxAge minus its 20% jitter
		settle()
		if got := c.Stats().ConnsClosed; got != 0 {
			t.Fatalf("got %d connections closed at 3m, want 0 (MaxAge 5m, jitter ≤ 20%%)", got)
		}
		clk.Advance(2*time.Minute + time.Second)
		waitFor(t, func() bool { return c.Stats().ConnsClosed >= opened })
		// Still in use (IdleTimeout 1h): replacements are dialed ahead.
		waitFor(t, func() bool { return c.Stats().Conns >= 1 })
		requireAllAnswered(t, runQueries(t, c, 10, 2, time.Second))
	})
	t.Run("stalled connection", func(t *testing.T) {
		fs := startFake(t, script{blackhole: true})
		clk := newFakeClock()
		c := newTestClient(t, Config{Servers: []string{fs.addr}, Now: clk.Now})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := c.Exchange(ctx, query("x.test.", dns.TypeA)); err == nil {
			t.Fatalf("got an answer from a server that answers nothing")
		}
		clk.Advance(time.Second)
		settle()
		if got := c.Stats().Stalls; got != 0 {
			t.Fatalf("got %d stalls after 1s, want 0 (Timeout 2s)", got)
		}
		clk.Advance(1500 * time.Millisecond)
		waitFor(t, func() bool { return c.Stats().Stalls == 1 })
	})
}
