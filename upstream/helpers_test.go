package upstream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/podns/podns/internal/timetest"
)

// testLogger logs at info (debug with PODNS_TEST_DEBUG=1) through t.Log.
func testLogger(t testing.TB) zerolog.Logger {
	lvl := zerolog.InfoLevel
	if os.Getenv("PODNS_TEST_DEBUG") != "" {
		lvl = zerolog.DebugLevel
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(lvl).With().Timestamp().Logger()
}

// newTestClient starts a client; it is closed and checked for leaked
// goroutines when the test ends.
func newTestClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		checkNoLeak(t)
	})
	return c
}

// checkNoLeak fails t if a goroutine is still running code of the
// package's non-test files, i.e. one the Client started and did not stop.
func checkNoLeak(t testing.TB) {
	t.Helper()
	timetest.Poll(t, timetest.Timeout, func() error {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var leaked []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if ownGoroutine(g) {
				leaked = append(leaked, g)
			}
		}
		if len(leaked) > 0 {
			return fmt.Errorf("goroutines outlived the client:\n%s", strings.Join(leaked, "\n\n"))
		}
		return nil
	})
}

func ownGoroutine(stack string) bool {
	for _, line := range strings.Split(stack, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "/upstream/"); i >= 0 && !strings.Contains(line, "_test.go") && strings.Contains(line, ".go:") {
			return true
		}
	}
	return false
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	return m
}

// result of one query in a run.
type result struct {
	name    string
	latency time.Duration
	err     error
	told    func() int32 // through ExchangeAsync: how many times the receiver was told so far
}

// runQueries asks n distinct names with the given concurrency, each with
// its own deadline, and checks every answer against the fake's ipFor.
func runQueries(t testing.TB, c *Client, n, concurrency int, timeout time.Duration) []result {
	t.Helper()
	return concurrently(n, concurrency, func(i int) result {
		return ask(c, fmt.Sprintf("q%d.test.", i), timeout)
	})
}

// runAsyncQueries is runQueries through ExchangeAsync, whose deadline is the client's Timeout.
func runAsyncQueries(t testing.TB, c *Client, n, concurrency int) []result {
	t.Helper()
	return concurrently(n, concurrency, func(i int) result {
		return askAsync(c, fmt.Sprintf("q%d.test.", i))
	})
}

// receiver records what ExchangeAsync tells it.
type receiver struct {
	told atomic.Int32
	ch   chan received
}

type received struct {
	wire []byte
	err  error
}

func newReceiver() *receiver { return &receiver{ch: make(chan received, 2)} }

func (r *receiver) Receive(wire []byte, err error) {
	r.told.Add(1)
	r.ch <- received{wire, err}
}

// askAsync is ask through ExchangeAsync: the receiver must be told once, within the client's Timeout
// and a margin.
func askAsync(c *Client, name string) result {
	m := query(name, dns.TypeA)
	m.Id = dns.Id()
	r := newReceiver()
	start := time.Now()
	c.ExchangeAsync(m, r)
	res := result{name: name, told: r.told.Load}
	select {
	case got := <-r.ch:
		res.latency, res.err = time.Since(start), got.err
		if got.err == nil {
			res.err = checkWire(m, got.wire)
		}
	case <-time.After(c.cfg.Timeout + time.Second):
		res.latency, res.err = time.Since(start), errors.New("receiver not told within the timeout")
	}
	return res
}

// requireToldOnce closes c, which returns once every goroutine and timer function of the client is
// done, so that no receiver can be told again; then it fails t unless each receiver of res (results of
// askAsync) was told exactly once.
func requireToldOnce(t testing.TB, c *Client, res []result) {
	t.Helper()
	c.Close()
	for _, r := range res {
		if n := r.told(); n != 1 {
			t.Errorf("%s: receiver told %d times, want 1", r.name, n)
		}
	}
}

// checkWire is checkAnswer for a reply in wire form, which has no OPT record.
func checkWire(m *dns.Msg, wire []byte) error {
	r := new(dns.Msg)
	if err := r.Unpack(wire); err != nil {
		return fmt.Errorf("unpacking the reply: %w", err)
	}
	if r.IsEdns0() != nil {
		return errors.New("reply in wire form has an OPT record, want none")
	}
	return checkAnswer(m, r)
}

// concurrently runs do(0..n-1) on concurrency goroutines and returns the results in order.
func concurrently(n, concurrency int, do func(i int) result) []result {
	res := make([]result, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res[i] = do(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return res
}

// ask runs one query and checks that the answer is the right one.
func ask(c *Client, name string, timeout time.Duration) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	m := query(name, dns.TypeA)
	m.Id = dns.Id()
	start := time.Now()
	r, err := c.Exchange(ctx, m)
	res := result{name: name, latency: time.Since(start), err: err}
	if err == nil {
		res.err = checkAnswer(m, r)
	}
	return res
}

func checkAnswer(m, r *dns.Msg) error {
	if r.Id != m.Id {
		return fmt.Errorf("reply ID %d, want %d", r.Id, m.Id)
	}
	if len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, m.Question[0].Name) {
		return fmt.Errorf("reply question %v, want %v", r.Question, m.Question)
	}
	if len(r.Answer) != 1 {
		return fmt.Errorf("%d answers, want 1", len(r.Answer))
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok {
		return fmt.Errorf("answer %v, want an A", r.Answer[0])
	}
	if want := ipFor(m.Question[0].Name).String(); a.A.String() != want {
		return fmt.Errorf("answer %v for %s, want %v", a.A, m.Question[0].Name, want)
	}
	return nil
}

// requireAllAnswered fails t for every query without its right answer.
func requireAllAnswered(t testing.TB, res []result) {
	t.Helper()
	bad := 0
	for _, r := range res {
		if r.err != nil {
			if bad < 10 {
				t.Errorf("%s: got error %v, want the right answer", r.name, r.err)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("got %d of %d queries without their right answer, want 0", bad, len(res))
	}
}

// percentile of the latencies of res (p in [0,1]).
func percentile(res []result, p float64) time.Duration {
	if len(res) == 0 {
		return 0
	}
	ls := make([]time.Duration, len(res))
	for i, r := range res {
		ls[i] = r.latency
	}
	slices.Sort(ls)
	return ls[min(len(ls)-1, int(p*float64(len(ls))))]
}

func isErr(err, target error) bool { return errors.Is(err, target) }
