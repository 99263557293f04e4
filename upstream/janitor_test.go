package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/internal/timetest"
)

// waitJanitorRound waits until the janitor has finished a round that began at or after the client
// clock's present reading: a round that saw what the test did before the call (a fake clock advanced,
// queries answered). The janitor ticks in real time whatever the client's clock; only after such a
// round can a test assert that the janitor did not act. On a fake clock, advance it first: a round
// that began before the test acted reads the same time as one after.
func waitJanitorRound(t testing.TB, c *Client) {
	t.Helper()
	now := c.nowNS()
	timetest.WaitFor(t, func() bool { return c.janitorSaw.Load() >= now })
}

// TestJanitor: idle close, retirement at MaxAge and stall detection follow
// the injected clock, with the default timeouts.
func TestJanitor(t *testing.T) {
	t.Run("idle close at IdleTimeout", func(t *testing.T) {
		fs := startFake(t, script{})
		clk := timetest.NewClock(time.Now())
		c := newTestClient(t, Config{Servers: []string{fs.addr}, Now: clk.Now})
		requireAllAnswered(t, runQueries(t, c, 10, 2, time.Second))
		clk.Advance(4 * time.Second)
		waitJanitorRound(t, c)
		if got := c.Stats().Conns; got == 0 {
			t.Fatalf("got no connections 4s after the last query, want them open (IdleTimeout 5s)")
		}
		clk.Advance(2 * time.Second)
		timetest.WaitFor(t, func() bool { return c.Stats().Conns == 0 })
	})
	t.Run("retire at MaxAge", func(t *testing.T) {
		fs := startFake(t, script{})
		clk := timetest.NewClock(time.Now())
		c := newTestClient(t, Config{Servers: []string{fs.addr}, Now: clk.Now, IdleTimeout: time.Hour})
		requireAllAnswered(t, runQueries(t, c, 10, 2, time.Second))
		opened := c.Stats().ConnsOpened
		clk.Advance(3 * time.Minute) // under MaxAge minus its 20% jitter
		waitJanitorRound(t, c)
		if got := c.Stats().ConnsClosed; got != 0 {
			t.Fatalf("got %d connections closed at 3m, want 0 (MaxAge 5m, jitter ≤ 20%%)", got)
		}
		clk.Advance(2*time.Minute + time.Second)
		timetest.WaitFor(t, func() bool { return c.Stats().ConnsClosed >= opened })
		// Still in use (IdleTimeout 1h): replacements are dialed ahead.
		timetest.WaitFor(t, func() bool { return c.Stats().Conns >= 1 })
		requireAllAnswered(t, runQueries(t, c, 10, 2, time.Second))
	})
	t.Run("stalled connection", func(t *testing.T) {
		fs := startFake(t, script{blackhole: true})
		clk := timetest.NewClock(time.Now())
		c := newTestClient(t, Config{Servers: []string{fs.addr}, Now: clk.Now})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := c.Exchange(ctx, query("x.test.", dns.TypeA)); err == nil {
			t.Fatalf("got an answer from a server that answers nothing")
		}
		clk.Advance(time.Second)
		waitJanitorRound(t, c)
		if got := c.Stats().Stalls; got != 0 {
			t.Fatalf("got %d stalls after 1s, want 0 (Timeout 2s)", got)
		}
		clk.Advance(1500 * time.Millisecond)
		timetest.WaitFor(t, func() bool { return c.Stats().Stalls == 1 })
	})
}
