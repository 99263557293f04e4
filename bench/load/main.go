// Command load sends DNS lookups over UDP at a fixed rate, the way a pod's clients do, and reports
// the answers by rcode and the latency percentiles per name class. bench/upstream runs it for the
// scenarios dnsperf cannot report: dnsperf sends one query at a time per name from a file and gives
// one latency distribution for all of them, where these need glibc's A+AAAA pairs on one socket and
// figures per class of name (fast and slow, repeated and new).
//
// Each lookup gets a socket of its own, as glibc's res_send opens one per lookup, and sends its
// queries back to back on it: an A+AAAA pair for the "typical" mix (glibc's getaddrinfo asks both at
// once from one socket), one A query otherwise. A reply counts only when its ID and question match
// the query (RFC 5452, as glibc checks); a query without one within -timeout is lost. Lookups start
// on a fixed schedule (open loop: a slow answer never delays the next lookup), so the rate is the one
// asked for whatever the server does.
//
// Mixes (-mix):
//
//	typical  a pod's lookups, each an A+AAAA pair: 70% in-cluster short names of a few Services
//	         (cluster-repeat), 5% new pod hostnames of a headless Service (cluster-new: <u>.hl,
//	         answered by a wildcard), 20% a few external names (external-repeat), 5% new external
//	         names (external-new: <u>.miss.test, a wildcard). Short names are sent as they are
//	         (dnsPolicy None, no search list: the stub resolver does the search).
//	slow     one A query per lookup: 95% new names under miss.test (fast), 5% new names under
//	         slow.test (slow), which bench/upstream's CoreDNS answers 300 ms late (erratic plugin).
//	miss     one A query per lookup, every name new under miss.test.
//	newpairs an A+AAAA pair per lookup, every name new under miss.test (a pod's new external names:
//	         podns with ndots 5 walks the search list for them first, as glibc would).
//
// Output: one tab-separated line per class and one for all of them ("class lookups queries noerror
// nxdomain servfail other lost p50_us p99_us max_us avg_us"), after a header line, plus a line
// "# sent N lookups in S s" saying whether the schedule was kept. Latencies are over answered queries;
// lost ones are counted apart (a timeout would otherwise hide in "max").
//
// Usage:
//
//	load -server 127.77.0.5:15305 -mix typical -rate 500 -duration 60s
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxOutstanding bounds the lookups in progress, so a server that stops answering costs the load
// tool at most this many goroutines and sockets (with a 2 s timeout and 5,000 lookups/s, 10,000 are
// in progress at worst); a lookup due while the bound is reached is counted lost, unsent.
const maxOutstanding = 20000

// maxReply is the largest UDP reply read: a reply is at most 65,535 bytes (RFC 6891 §6.2.5).
const maxReply = 65535

type query struct {
	name  string
	qtype uint16
}

type lookup struct {
	class   string
	queries []query
}

// result is one query's outcome: its class, its rcode (or -1 when lost) and its latency.
type result struct {
	class   string
	rcode   int
	latency time.Duration
}

// mix makes the i-th lookup of a run; tag makes new names unique across runs.
type mix func(rng *rand.Rand, i int, tag string) lookup

var (
	clusterNames = []string{"graylog", "dual", "web", "web-0.web", "db.other", "kube-dns.kube-system"}
	extNames     = []string{"www.example.com", "only4.example.com", "mail.example.com", "example.com"}
)

func pair(class, name string) lookup {
	return lookup{class, []query{{name, dns.TypeA}, {name, dns.TypeAAAA}}}
}

func single(class, name string) lookup {
	return lookup{class, []query{{name, dns.TypeA}}}
}

var mixes = map[string]mix{
	"typical": func(rng *rand.Rand, i int, tag string) lookup {
		switch p := rng.IntN(100); {
		case p < 70:
			return pair("cluster-repeat", dns.Fqdn(clusterNames[rng.IntN(len(clusterNames))]))
		case p < 75:
			return pair("cluster-new", fmt.Sprintf("%s%x.hl.", tag, i))
		case p < 95:
			return pair("external-repeat", dns.Fqdn(extNames[rng.IntN(len(extNames))]))
		default:
			return pair("external-new", fmt.Sprintf("%s%x.miss.test.", tag, i))
		}
	},
	"slow": func(rng *rand.Rand, i int, tag string) lookup {
		// Every 20th lookup, not a random 5%: the slow answers outstanding stay at rate/20 × 300 ms.
		if i%20 == 0 {
			return single("slow", fmt.Sprintf("%s%x.slow.test.", tag, i))
		}
		return single("fast", fmt.Sprintf("%s%x.miss.test.", tag, i))
	},
	"miss": func(rng *rand.Rand, i int, tag string) lookup {
		return single("miss", fmt.Sprintf("%s%x.miss.test.", tag, i))
	},
	"newpairs": func(rng *rand.Rand, i int, tag string) lookup {
		return pair("new", fmt.Sprintf("%s%x.miss.test.", tag, i))
	},
}

func main() {
	server := flag.String("server", "", "server address ip:port (UDP)")
	mixName := flag.String("mix", "typical", "typical, slow, miss or newpairs")
	rate := flag.Int("rate", 500, "lookups per second")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	timeout := flag.Duration("timeout", 2*time.Second, "a query without a reply after this long is lost")
	seed := flag.Uint64("seed", 1, "seed of the name choice (the same seed gives the same mix)")
	tag := flag.String("tag", "", "prefix of new names (default: from the clock, so no two runs share a name)")
	flag.Parse()
	m, ok := mixes[*mixName]
	raddr, err := net.ResolveUDPAddr("udp", *server)
	if !ok || err != nil || *rate < 1 || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "usage: load -server ip:port [-mix typical|slow|miss|newpairs] [-rate N] [-duration D] [-timeout D]")
		os.Exit(2)
	}
	if *tag == "" {
		*tag = fmt.Sprintf("u%x-", time.Now().Unix()&0xffffff)
	}
	res, sent, took := run(raddr, m, *rate, *duration, *timeout, *seed, *tag)
	fmt.Printf("# sent %d lookups in %.2f s (%.0f/s asked %d/s)\n", sent, took.Seconds(), float64(sent)/took.Seconds(), *rate)
	report(os.Stdout, res)
}

// run sends rate lookups a second for d and returns every query's result once the last lookup has
// its answers or has timed out, with the lookups started and the time it took to start them.
func run(raddr *net.UDPAddr, m mix, rate int, d, timeout time.Duration, seed uint64, tag string) ([]result, int, time.Duration) {
	rng := rand.New(rand.NewPCG(seed, seed))
	total := int(int64(rate) * int64(d) / int64(time.Second))
	var (
		mu  sync.Mutex // guards res
		res = make([]result, 0, total*2)
		wg  sync.WaitGroup
	)
	slots := make(chan struct{}, maxOutstanding)
	start := time.Now()
	for i := range total {
		l := m(rng, i, tag)
		// Absolute due times: a late wake-up is caught up on, so the rate holds over the run.
		if wait := time.Until(start.Add(time.Duration(int64(i) * int64(time.Second) / int64(rate)))); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case slots <- struct{}{}:
		default:
			mu.Lock()
			for range l.queries {
				res = append(res, result{l.class, -1, 0})
			}
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := do(raddr, l, timeout)
			<-slots
			mu.Lock()
			res = append(res, out...)
			mu.Unlock()
		}()
	}
	took := time.Since(start)
	wg.Wait()
	return res, total, took
}

// do runs one lookup: its queries written back to back on one socket, then replies read until each
// query has its own or the timeout passes.
func do(raddr *net.UDPAddr, l lookup, timeout time.Duration) []result {
	out := make([]result, len(l.queries))
	for i := range out {
		out[i] = result{l.class, -1, 0}
	}
	c, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return out
	}
	defer c.Close()
	ids := make([]uint16, len(l.queries))
	sentAt := make([]time.Time, len(l.queries))
	for i, q := range l.queries {
		msg := new(dns.Msg)
		msg.SetQuestion(q.name, q.qtype)
		msg.Id = dns.Id()
		ids[i] = msg.Id
		wire, err := msg.Pack()
		if err != nil {
			return out
		}
		sentAt[i] = time.Now()
		if _, err := c.Write(wire); err != nil {
			return out
		}
	}
	_ = c.SetReadDeadline(sentAt[0].Add(timeout))
	buf := make([]byte, maxReply)
	for left := len(l.queries); left > 0; {
		n, err := c.Read(buf)
		now := time.Now()
		if err != nil {
			return out // the deadline passed: the queries still without a reply are lost
		}
		var r dns.Msg
		if r.Unpack(buf[:n]) != nil || !r.Response || len(r.Question) != 1 {
			continue
		}
		for i, q := range l.queries {
			if out[i].rcode < 0 && r.Id == ids[i] && r.Question[0].Qtype == q.qtype &&
				r.Question[0].Qclass == dns.ClassINET && dns.CanonicalName(r.Question[0].Name) == dns.CanonicalName(q.name) {
				out[i] = result{l.class, r.Rcode, now.Sub(sentAt[i])}
				left--
				break
			}
		}
	}
	return out
}

type classStats struct {
	queries, noerror, nxdomain, servfail, other, lost int
	lat                                               []time.Duration
}

func report(w io.Writer, res []result) {
	by := map[string]*classStats{}
	all := &classStats{}
	var names []string
	for _, r := range res {
		s := by[r.class]
		if s == nil {
			s = &classStats{}
			by[r.class] = s
			names = append(names, r.class)
		}
		for _, t := range []*classStats{s, all} {
			t.queries++
			switch r.rcode {
			case -1:
				t.lost++
			case dns.RcodeSuccess:
				t.noerror++
			case dns.RcodeNameError:
				t.nxdomain++
			case dns.RcodeServerFailure:
				t.servfail++
			default:
				t.other++
			}
			if r.rcode >= 0 {
				t.lat = append(t.lat, r.latency)
			}
		}
	}
	slices.Sort(names)
	fmt.Fprintln(w, "class\tqueries\tnoerror\tnxdomain\tservfail\tother\tlost\tp50_us\tp99_us\tmax_us\tavg_us")
	for _, n := range names {
		line(w, n, by[n])
	}
	line(w, "all", all)
}

func line(w io.Writer, name string, s *classStats) {
	slices.Sort(s.lat)
	var sum time.Duration
	for _, d := range s.lat {
		sum += d
	}
	us := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)) }
	p50, p99, max, avg := "-", "-", "-", "-"
	if n := len(s.lat); n > 0 {
		p50, p99, max = us(s.lat[(n*50+99)/100-1]), us(s.lat[(n*99+99)/100-1]), us(s.lat[n-1])
		avg = us(sum / time.Duration(n))
	}
	fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", name, s.queries, s.noerror, s.nxdomain,
		s.servfail, s.other, s.lost, p50, p99, max, avg)
}
