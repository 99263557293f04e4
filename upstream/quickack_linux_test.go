//go:build linux

package upstream

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestQuickAckAgainstNagle: a server that answers in order and leaves Nagle's algorithm on holds a
// write while an earlier one is not yet ACKed, and Linux delays a client's ACK by 40 ms or more. Quick
// ACKs must let go of the second of two pipelined answers, and of the rest of an answer written in two
// parts, at once; an isolated exchange, whose ACK waits to ride on the next query, must not leave the
// connection in a state where the next pair stalls.
func TestQuickAckAgainstNagle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		split bool     // the server writes each answer in two parts, 2 ms apart
		names []string // queried together, after one isolated exchange
	}{
		{name: "pipelined pair", names: []string{"first.test.", "second.test."}},
		{name: "split answer", split: true, names: []string{"one.test."}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := startFake(t, script{serial: true, nagle: true, split: tc.split})
			c := newTestClient(t, Config{Servers: []string{fs.addr}, ConnsPerServer: 1, MaxConnsPerServer: 1})
			ctx := context.Background()
			var took []time.Duration
			for i := range 30 {
				if _, err := c.Exchange(ctx, query("alone.test.", dns.TypeA)); err != nil {
					t.Fatalf("exchange %d: %v", i, err)
				}
				start := time.Now()
				var wg sync.WaitGroup
				for _, name := range tc.names {
					wg.Go(func() {
						if _, err := c.Exchange(ctx, query(name, dns.TypeA)); err != nil {
							t.Errorf("exchange %d %s: %v", i, name, err)
						}
					})
				}
				wg.Wait()
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			// A stall is a delayed-ACK timer (≥ 40 ms); an answer on loopback takes well under 1 ms
			// (plus the split's 2 ms).
			if median := took[len(took)/2]; median > 20*time.Millisecond {
				t.Errorf("median %v (all: %v), want well under the 40 ms delayed ACK", median, took)
			}
		})
	}
}
