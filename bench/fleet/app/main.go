// Command app is one emulated pod's application for the fleet bench: it looks up a
// mix of names at a fixed rate, the way glibc's getaddrinfo(AF_UNSPEC) asks them
// under the pod's resolv.conf, and prints a JSON summary when done.
//
// The walk is glibc's (resolv/res_query.c __res_context_search): with fewer dots
// than ndots, the search candidates in order, then the name as given; at or above
// ndots, the name first. Each candidate is asked A and AAAA together on one UDP
// socket (res_send.c send_dg); the walk ends at the first candidate where either
// type has records, and NXDOMAIN or NODATA for both move it on. A query
// unanswered after -timeout is re-sent, -attempts times in all (resolv.conf
// options timeout:5 attempts:2 are glibc's defaults).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

type summary struct {
	Lookups  int      `json:"lookups"`
	Failed   int      `json:"failed"`
	Slow     int      `json:"slow"` // over 1 s
	Queries  int      `json:"queries"`
	Resent   int      `json:"resent"`
	Distinct int      `json:"distinct"` // names looked up at least once
	P50us    float64  `json:"p50_us"`
	P99us    float64  `json:"p99_us"`
	MaxUs    float64  `json:"max_us"`
	FailedAs []string `json:"failed_names,omitempty"`
}

func main() {
	server := flag.String("server", "127.0.0.1:53", "nameserver address")
	search := flag.String("search", "", "search list, space-separated")
	ndots := flag.Int("ndots", 1, "resolv.conf ndots")
	names := flag.String("names", "", "comma-separated names to look up (chosen at random)")
	rate := flag.Float64("rate", 5, "lookups per second")
	dur := flag.Duration("duration", 30*time.Second, "how long to look up")
	timeout := flag.Duration("timeout", 5*time.Second, "per-try timeout (glibc timeout:5)")
	attempts := flag.Int("attempts", 2, "tries per query (glibc attempts:2)")
	seed := flag.Int64("seed", 1, "random seed")
	flag.Parse()

	mix := strings.Split(*names, ",")
	var list []string
	for _, s := range strings.Fields(*search) {
		list = append(list, dns.Fqdn(s))
	}
	r := rand.New(rand.NewSource(*seed))
	w := &walker{server: *server, search: list, ndots: *ndots, timeout: *timeout, attempts: *attempts}

	var (
		mu   sync.Mutex
		sum  summary
		lat  []float64
		seen = make(map[string]bool)
		wg   sync.WaitGroup
	)
	interval := time.Duration(float64(time.Second) / *rate)
	// A random phase, so the pods of a fleet do not all ask in the same instant.
	time.Sleep(time.Duration(r.Int63n(int64(interval))))
	tick := time.NewTicker(interval)
	defer tick.Stop()
	end := time.Now().Add(*dur)
	for now := time.Now(); now.Before(end); now = <-tick.C {
		name := mix[r.Intn(len(mix))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			ok, q, resent := w.lookup(name)
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			sum.Lookups++
			if !seen[name] {
				seen[name] = true
				sum.Distinct++
			}
			sum.Queries += q
			sum.Resent += resent
			if !ok {
				sum.Failed++
				if len(sum.FailedAs) < 10 {
					sum.FailedAs = append(sum.FailedAs, name)
				}
			}
			if d > time.Second {
				sum.Slow++
			}
			lat = append(lat, float64(d.Microseconds()))
		}()
	}
	wg.Wait()
	sort.Float64s(lat)
	if n := len(lat); n > 0 {
		sum.P50us, sum.P99us, sum.MaxUs = lat[n/2], lat[n*99/100], lat[n-1]
	}
	if err := json.NewEncoder(os.Stdout).Encode(sum); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type walker struct {
	server   string
	search   []string
	ndots    int
	timeout  time.Duration
	attempts int
}

// candidates lists the FQDNs glibc tries for name, in order.
func (w *walker) candidates(name string) []string {
	if dns.IsFqdn(name) {
		return []string{name}
	}
	as := dns.Fqdn(name)
	var out []string
	if strings.Count(name, ".") >= w.ndots {
		out = append(out, as)
	}
	for _, s := range w.search {
		out = append(out, dns.Fqdn(name+"."+s))
	}
	if strings.Count(name, ".") < w.ndots {
		out = append(out, as)
	}
	return out
}

// lookup walks name's candidates; ok means some candidate had A or AAAA records.
func (w *walker) lookup(name string) (ok bool, queries, resent int) {
	for _, c := range w.candidates(name) {
		found, next, q, rs := w.pair(c)
		queries += q
		resent += rs
		if found {
			return true, queries, resent
		}
		if !next {
			return false, queries, resent
		}
	}
	return false, queries, resent
}

// pair asks A and AAAA of fqdn at once on one socket. found: either has records;
// next: both answered with no records (NXDOMAIN, NODATA) or SERVFAIL, so the walk
// moves on; neither: a query went unanswered after every attempt.
func (w *walker) pair(fqdn string) (found, next bool, queries, resent int) {
	conn, err := net.Dial("udp", w.server)
	if err != nil {
		return false, false, 0, 0
	}
	defer conn.Close()
	qs := map[uint16]*dns.Msg{}
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m := new(dns.Msg)
		m.SetQuestion(fqdn, t)
		m.Id = dns.Id()
		qs[m.Id] = m
	}
	send := func() {
		for _, m := range qs {
			b, _ := m.Pack()
			conn.Write(b)
			queries++
		}
	}
	buf := make([]byte, 65535)
	answered := 0
	for try := 0; try < w.attempts && len(qs) > 0; try++ {
		if try > 0 {
			resent += len(qs)
		}
		send()
		deadline := time.Now().Add(w.timeout)
		conn.SetReadDeadline(deadline)
		for len(qs) > 0 {
			n, err := conn.Read(buf)
			if err != nil {
				break // timeout: re-send what is unanswered
			}
			r := new(dns.Msg)
			if r.Unpack(buf[:n]) != nil {
				continue
			}
			q, ok := qs[r.Id]
			// glibc accepts a reply only when ID and question match (res_send.c).
			if !ok || len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, q.Question[0].Name) ||
				r.Question[0].Qtype != q.Question[0].Qtype {
				continue
			}
			delete(qs, r.Id)
			answered++
			if r.Rcode == dns.RcodeSuccess && hasAddr(r) {
				found = true
			}
		}
	}
	return found, answered == 2 && !found, queries, resent
}

func hasAddr(r *dns.Msg) bool {
	for _, rr := range r.Answer {
		switch rr.(type) {
		case *dns.A, *dns.AAAA:
			return true
		}
	}
	return false
}
