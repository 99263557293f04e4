package upstream

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// lastRes holds the results of the running TestFaults case for its check.
var lastRes []result

// fastOnly drops the results of queries the fake delayed on purpose.
func fastOnly(fs *fakeServer, res []result) []result {
	var out []result
	for _, r := range res {
		if _, slow := fs.slow.Load(strings.ToLower(r.name)); !slow {
			out = append(out, r)
		}
	}
	return out
}

// TestFaults runs the same load through the client against upstreams with
// scripted faults. Every query must get its right answer, nothing may hang
// (each query has a 2 s deadline), no goroutine may outlive the client
// (checked at cleanup) and the connections stay within
// MaxConnsPerServer.
func TestFaults(t *testing.T) {
	const n = 400
	// Drops are random: a drop of every k-th query received can fall in
	// step with the hedges when about k queries arrive per HedgeAfter.
	oneIn := func(k int) func(int64) bool { return func(int64) bool { return rand.N(k) == 0 } }
	tests := []struct {
		name  string
		s     script
		conc  int // concurrent queries; 0: conc
		cfg   Config
		check func(t *testing.T, st Stats, fs *fakeServer)
	}{
		{
			// A slow answer holds up nothing while fewer queries run at
			// once than MaxConnsPerServer (8): each can have a
			// connection of its own. (With more, some must queue.)
			name: "serial with slow answers",
			conc: 4,
			s: script{serial: true, delay: func(i int64) time.Duration {
				if i%20 == 0 {
					return 300 * time.Millisecond
				}
				return 0
			}},
			check: func(t *testing.T, _ Stats, fs *fakeServer) {
				// The other queries must not wait behind a slow one.
				if got := percentile(fastOnly(fs, lastRes), .99); got > 50*time.Millisecond {
					t.Errorf("got p99 %v for the fast queries, want < 50ms", got)
				}
			},
		},
		{
			// Queries share connections only when every one is held by an answer older than
			// HedgeAfter: two connections, answers up to 20 ms late and a 5 ms HedgeAfter force it,
			// and the pool sees the server reorder.
			name: "out of order",
			s:    script{reverseBatch: 4},
			cfg:  Config{MaxConnsPerServer: 2, HedgeAfter: 5 * time.Millisecond},
			check: func(t *testing.T, st Stats, _ *fakeServer) {
				if !st.Servers[0].Reorders {
					t.Errorf("got Reorders false, want true")
				}
			},
		},
		{
			name: "close after 20 answers",
			s:    script{serial: true, closeAfter: 20},
			check: func(t *testing.T, st Stats, _ *fakeServer) {
				// A close with queries unread sends RST, which may discard
				// the last answer: a limit learned one low is safe.
				if got := st.Servers[0].QueryLimit; got < minLimit || got > 20 {
					t.Errorf("got learned limit %d, want %d..20", got, minLimit)
				}
			},
		},
		{
			name: "close after 20 answers, pipelined",
			s:    script{closeAfter: 20},
			check: func(t *testing.T, st Stats, _ *fakeServer) {
				// A close with queries unread sends RST, which may discard
				// the last answer: a limit learned one low is safe.
				if got := st.Servers[0].QueryLimit; got < minLimit || got > 20 {
					t.Errorf("got learned limit %d, want %d..20", got, minLimit)
				}
			},
		},
		{
			name: "server idle close",
			s:    script{serial: true, idleClose: 30 * time.Millisecond, delay: func(i int64) time.Duration { return time.Duration(i%7) * 5 * time.Millisecond }},
		},
		{
			name: "reset with queries in flight",
			// One faulty connection: a query is re-sent once, and a second
			// faulty one could lose it again. Resetting after 5 queries
			// (< minLimit) is not taken for a query limit.
			s: script{serial: true, resetAfter: 5, faultConns: 1, delay: func(int64) time.Duration { return time.Millisecond }},
			check: func(t *testing.T, st Stats, _ *fakeServer) {
				if st.Resends == 0 {
					t.Errorf("got %d re-sends, want some", st.Resends)
				}
			},
		},
		{
			name: "silent drops",
			s:    script{serial: true, drop: oneIn(20)},
			cfg:  Config{HedgeAfter: 50 * time.Millisecond},
			check: func(t *testing.T, st Stats, _ *fakeServer) {
				if st.HedgeWins == 0 {
					t.Errorf("got %d hedge wins, want some", st.HedgeWins)
				}
			},
		},
		{
			name: "wrong IDs",
			s:    script{wrongIDFirst: true},
			check: func(t *testing.T, st Stats, _ *fakeServer) {
				// A wrong ID that hits another query in flight counts as
				// a mismatch.
				if got := st.Strays + st.Mismatches; got < n {
					t.Errorf("got %d strays and mismatches, want ≥ %d", got, n)
				}
			},
		},
		{
			name: "wrong questions",
			s:    script{wrongQFirst: true},
			check: func(t *testing.T, st Stats, _ *fakeServer) {
				if st.Mismatches < n {
					t.Errorf("got %d mismatches, want ≥ %d", st.Mismatches, n)
				}
			},
		},
		{
			name: "question echoed in mixed case",
			s:    script{mixCase: true},
		},
		{
			name: "garbage frames",
			s:    script{garbage: true},
		},
		{
			name: "broken framing",
			s:    script{serial: true, shortFrame: 15, faultConns: 1},
			check: func(t *testing.T, st Stats, _ *fakeServer) {
				if st.FramingErrs == 0 {
					t.Errorf("got %d framing errors, want some", st.FramingErrs)
				}
			},
		},
		{
			name: "length prefix split across writes",
			s:    script{split: true},
		},
	}
	for _, tt := range tests {
		for _, async := range []bool{false, true} {
			name := tt.name
			if async {
				name += ", async" // through ExchangeAsync: the callers write, and no goroutine waits
			}
			t.Run(name, func(t *testing.T) {
				faultCase(t, tt.s, tt.cfg, tt.conc, async, tt.check)
			})
		}
	}
}

// faultCase is one case of TestFaults.
func faultCase(t *testing.T, s script, cfg Config, conc int, async bool, check func(t *testing.T, st Stats, fs *fakeServer)) {
	const n = 400
	fs := startFake(t, s)
	cfg.Servers = []string{fs.addr}
	c := newTestClient(t, cfg)
	k := 8
	if conc > 0 {
		k = conc
	}
	var res []result
	if async {
		res = runAsyncQueries(t, c, n, k)
	} else {
		res = runQueries(t, c, n, k, 2*time.Second)
	}
	lastRes = res
	requireAllAnswered(t, res)
	st := c.Stats()
	if check != nil {
		check(t, st, fs)
	}
	// MaxConnsPerServer taking queries, plus as many draining.
	if got, want := st.Servers[0].PeakConns, 2*c.cfg.MaxConnsPerServer; got > want {
		t.Errorf("got %d connections at once, want ≤ %d", got, want)
	}
	if async && st.DirectWrites == 0 {
		t.Errorf("got no direct writes, want the callers of ExchangeAsync to write")
	}
	t.Logf("p50 %v p99 %v max %v; resends %d hedges %d/%d conns opened %d (max %d at once) writes %d (direct %d) msgs %d",
		percentile(res, .5), percentile(res, .99), percentile(res, 1), st.Resends, st.HedgeWins, st.Hedges,
		st.ConnsOpened, fs.MaxConns(), st.Writes, st.DirectWrites, st.Messages)
	if async {
		requireToldOnce(t, c, res)
	}
}
