package upstream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/internal/testbin"
)

// Tests against CoreDNS, the kube-dns of nearly every cluster and the upstream of record: the pool is
// made for it. The binaries are built from Go modules by .ci/kubebins.sh (testbin finds them); each
// test says which Corefile it uses and why. None forwards anywhere: every answer comes from CoreDNS.

// corednsZone is the Corefile block every test here serves: testdata's podns.test zone from a file
// (the `file` plugin answers at once, from memory, like the kubernetes plugin does for Services), so
// latency is CoreDNS's own, and the load tests' wildcard names get answers that name themselves.
const corednsZone = `podns.test:%[2]d {
	bind %[1]s
	file %[3]s podns.test
}
`

// startCoreDNS runs bin (a CoreDNS release) on a loopback address with the zone block and extra, a
// Corefile text with %[1]s for the address and %[2]d for the port.
func startCoreDNS(t *testing.T, bin, extra string) *daemon {
	t.Helper()
	dir := t.TempDir()
	zone, err := os.ReadFile("../testdata/upstream/podns.test.zone")
	if err != nil {
		t.Fatal(err)
	}
	zoneFile := filepath.Join(dir, "podns.test.zone")
	if err := os.WriteFile(zoneFile, zone, 0o644); err != nil {
		t.Fatal(err)
	}
	ip, port := loopbackAddr(t)
	corefile := fmt.Sprintf(corednsZone+extra, ip, port, zoneFile)
	path := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	return start(t, net.JoinHostPort(ip, fmt.Sprint(port)), bin, "-conf", path, "-quiet")
}

// TestCoreDNSConnectionReuse: a pod's lookups, A and AAAA asked together as glibc asks them, reuse
// the connections they opened, with both releases a cluster may run: 1.14.7 echoes the client's
// empty edns-tcp-keepalive option in every reply, 1.15.0 does not. Before the option was read for
// what it says (nothing), 1.14.7 cost a connection every few queries.
func TestCoreDNSConnectionReuse(t *testing.T) {
	for _, release := range []string{testbin.CoreDNS, testbin.CoreDNSPrev} {
		t.Run(release, func(t *testing.T) {
			cd := startCoreDNS(t, testbin.Need(t, release), "")
			c := newTestClient(t, Config{Servers: []string{cd.addr}})
			const lookups = 500
			res := concurrently(2*lookups, 2, func(i int) result {
				return askReal(c, fmt.Sprintf("h%d.load.podns.test.", i/2))
			})
			requireAllAnswered(t, res)
			st := c.Stats()
			t.Logf("%s: %d queries, %d connections opened, peak %d at once", release, len(res), st.ConnsOpened, st.Servers[0].PeakConns)
			// Two queries at once need two connections; a third may open when a reply and the
			// next query cross. One per 1,000 queries is the target: 1,000 queries, 3 allowed.
			if st.ConnsOpened > 3 {
				t.Errorf("got %d connections opened for %d queries, want ≤ 3", st.ConnsOpened, len(res))
			}
		})
	}
}

// TestCoreDNSSlowAnswers: CoreDNS's erratic plugin answers one query in 20 after 300 ms (as a
// forward to the outside would be), and answers a connection's queries one at a time. Forty
// queries at once keep a few slow answers outstanding all the time: no other query may wait behind
// one. The erratic block answers every A query with 192.0.2.53.
func TestCoreDNSSlowAnswers(t *testing.T) {
	cd := startCoreDNS(t, testbin.Need(t, testbin.CoreDNS), `slow.podns.test:%[2]d {
	bind %[1]s
	erratic {
		delay 20 300ms
	}
}
`)
	c := newTestClient(t, Config{Servers: []string{cd.addr}})
	const n = 2000
	res := concurrently(n, 40, func(i int) result {
		return askErratic(c, fmt.Sprintf("s%d-%d.slow.podns.test.", i, rand.N(1<<20)))
	})
	requireAllAnswered(t, res)
	var fast []time.Duration
	for _, r := range res {
		if r.latency < 250*time.Millisecond {
			fast = append(fast, r.latency)
		}
	}
	sort.Slice(fast, func(i, j int) bool { return fast[i] < fast[j] })
	st := c.Stats()
	p99 := fast[len(fast)*99/100]
	t.Logf("%d queries: %d slow, fast p50 %v p99 %v max %v; connections opened %d, peak %d, waits %d",
		n, n-len(fast), fast[len(fast)/2], p99, fast[len(fast)-1], st.ConnsOpened, st.Servers[0].PeakConns, st.Waits)
	// Erratic delays exactly one query in 20 it sees; a query that waited behind one would take
	// 300 ms too and show here as one more (the pool made for Knot: 482 of 2,000). Under the race
	// detector on a busy 2-core machine a few fast queries are starved that long by themselves.
	allowed := n/20 + 1
	if raceEnabled {
		allowed += n / 100
	}
	if slow := n - len(fast); slow > allowed {
		t.Errorf("got %d queries over 250 ms, want ≤ %d (the ones erratic delayed)", slow, allowed)
	}
	// The 2 ms is measured by the bench on a quiet machine; under the race detector in CI
	// the bound only has to tell a wait behind a slow answer from none.
	if p99 > 50*time.Millisecond {
		t.Errorf("got p99 %v for the fast queries, want < 50ms", p99)
	}
	// A slow answer's query is acknowledged long before it is answered: no connection to a live
	// server may be taken for a silent one.
	if st.SilentPeers != 0 {
		t.Errorf("got %d connections closed as silent, want 0", st.SilentPeers)
	}
}

// askErratic asks name's A record from CoreDNS's erratic plugin, which answers 192.0.2.53.
func askErratic(c *Client, name string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m := query(name, dns.TypeA)
	start := time.Now()
	r, err := c.Exchange(ctx, m)
	res := result{name: name, latency: time.Since(start), err: err}
	if err == nil {
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !strings.EqualFold(r.Answer[0].Header().Name, name) ||
			r.Answer[0].(*dns.A).A.String() != "192.0.2.53" {
			res.err = fmt.Errorf("got %v, want %s A 192.0.2.53", r, name)
		}
	}
	return res
}

// TestCoreDNSBusyWaits: with every connection allowed busy behind slow answers, a query waits for
// one to come free within its deadline, and none fails: two connections, every answer 50 ms late.
func TestCoreDNSBusyWaits(t *testing.T) {
	cd := startCoreDNS(t, testbin.Need(t, testbin.CoreDNS), `slow.podns.test:%[2]d {
	bind %[1]s
	erratic {
		delay 1 50ms
	}
}
`)
	c := newTestClient(t, Config{Servers: []string{cd.addr}, MaxConnsPerServer: 2})
	res := concurrently(40, 10, func(i int) result {
		return askErratic(c, fmt.Sprintf("w%d.slow.podns.test.", i))
	})
	requireAllAnswered(t, res)
	st := c.Stats()
	t.Logf("40 queries, 10 at once, 2 connections: waits %d (total %v), max latency %v, peak connections %d",
		st.Waits, st.WaitTime, percentile(res, 1), st.Servers[0].PeakConns)
	if st.Waits == 0 {
		t.Errorf("got no query waiting for a connection, want some (10 at once on 2)")
	}
	if got := st.Servers[0].PeakConns; got > 2 {
		t.Errorf("got %d connections at once, want ≤ 2", got)
	}
}
