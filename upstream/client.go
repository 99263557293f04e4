package upstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// janitorTick paces idle closes, retirements, stall checks and probes: 10
// wake-ups a second, and an idle close at most 100 ms late, well inside the
// margin between IdleTimeout (5 s) and the servers' (8–10 s).
const janitorTick = 100 * time.Millisecond

// janitorRestTick paces the janitor while no pool has a connection and every server is up: there is
// nothing to close, retire or probe, and a query dials what it needs itself. At 10 wake-ups a second an
// idle podns cost 0.2% of a core (bench/run's 60 s idle figure), over the 0.1% a sidecar may.
const janitorRestTick = 2 * time.Second

// Buffer sizes: queries are small (a name, maybe an OPT); most replies
// over TCP fit 4 KiB, larger ones are allocated.
const (
	queryBufSize = 512
	replyBufSize = 4 << 10
)

// Client sends queries to the upstream servers over persistent, pipelined
// TCP connections. It is safe for concurrent use.
type Client struct {
	cfg   Config // defaults applied; never changes after New
	log   zerolog.Logger
	pools []*pool // one per Config.Servers, in order
	stats counters
	qbufs *bufPool
	rbufs *bufPool
	calls sync.Pool // *call
	epoch time.Time // the client clock counts ns from here; 0 means never

	// janitorSaw is the client clock (nowNS) at the start of the janitor's last finished round. Only
	// tests read it (waitJanitorRound in janitor_test.go): to assert that the janitor did not act, they
	// first wait for a round that saw the clock as they left it.
	janitorSaw atomic.Int64

	tickets atomic.Uint64 // numbers the places calls take in the pools' lines (line.join)

	heldMu sync.Mutex
	held   []*conn // connections with queries of Queue to write at Flush

	ctx       context.Context // canceled by Close: ends dials and probes
	cancel    context.CancelFunc
	stop      chan struct{} // closed by Close
	closed    atomic.Bool
	closeOnce sync.Once

	gmu    sync.Mutex     // guards sealed; orders every wg.Add before Close's wg.Wait
	sealed bool           // Close waits: no goroutine may start
	wg     sync.WaitGroup // every goroutine the client starts, and every timer function running
}

// New validates cfg and starts dialing the first server (New does not wait
// for the connections: queries queue on them while they dial).
func New(cfg Config, log zerolog.Logger) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:   cfg,
		log:   log.With().Str("component", "upstream").Logger(),
		qbufs: newBufPool(queryBufSize),
		rbufs: newBufPool(replyBufSize),
		epoch: cfg.Now().Add(-time.Second),
		stop:  make(chan struct{}),
	}
	c.calls.New = newCall
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for i, s := range cfg.Servers {
		c.pools = append(c.pools, &pool{c: c, addr: s, idx: i, log: c.log.With().Str("server", s).Logger()})
	}
	now := c.nowNS()
	c.pools[0].lastUsed.Store(now)
	c.pools[0].warm(now, dialDemand)
	c.wg.Add(1)
	go c.janitor()
	return c, nil
}

// nowNS is the client clock: ns since epoch, always > 0.
func (c *Client) nowNS() int64 { return int64(c.cfg.Now().Sub(c.epoch)) }

// Exchange sends m and returns the matching reply, with reply.Id == m.Id and without the reply's OPT
// record (per hop: RFC 6891 §6.1.1). m is never modified. The ctx deadline (or Timeout when it has
// none) bounds everything, re-sends and hedges included. A SERVFAIL reply is a reply, not an error.
// Errors wrap ErrTimeout, ErrNoServer, ErrBusy, ErrConnLost, ErrBadReply, ErrTruncated, ErrBadQuery,
// ErrClosed, or the ctx's error when it was canceled.
func (c *Client) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	w, err := c.ExchangeWire(ctx, m)
	if err != nil {
		return nil, err
	}
	r := new(dns.Msg)
	if err := r.Unpack(w); err != nil {
		return nil, queryErr(m, fmt.Errorf("%w: %w", ErrBadReply, err))
	}
	return r, nil
}

// ExchangeWire is Exchange returning the reply in wire form: for a caller that keeps replies in wire
// form, a reply that needs no unpacking. It waits on the same path as ExchangeAsync: a canceled ctx
// returns at once, and the exchange it leaves ends by itself by its deadline.
func (c *Client) ExchangeWire(ctx context.Context, m *dns.Msg) ([]byte, error) {
	var deadline time.Time
	d, ctxDeadline := ctx.Deadline()
	if ctxDeadline {
		// The ctx deadline is wall-clock time; the client works on its own clock (Config.Now), so
		// carry over the time left, not the instant.
		deadline = c.cfg.Now().Add(time.Until(d))
	}
	wr := &waitReceiver{done: make(chan struct{})}
	c.exchangeAsync(m, wr, false, deadline)
	select {
	case <-wr.done:
		if ctxDeadline && errors.Is(wr.err, ErrTimeout) {
			return nil, fmt.Errorf("%w: %w", wr.err, context.DeadlineExceeded)
		}
		return wr.w, wr.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The exchange ends by the same deadline, and counts itself.
			return nil, queryErr(m, fmt.Errorf("%w: %w", ErrTimeout, ctx.Err()))
		}
		c.stats.canceled.Add(1)
		return nil, queryErr(m, ctx.Err())
	}
}

// waitReceiver hands an exchange's outcome to the goroutine waiting in ExchangeWire.
type waitReceiver struct {
	w    []byte
	err  error
	done chan struct{} // closed once w and err are set
}

func (r *waitReceiver) Receive(w []byte, err error) {
	r.w, r.err = w, err
	close(r.done)
}

// tally counts the outcome of an exchange of m that began at start and returns its error, naming the
// query.
func (c *Client) tally(m *dns.Msg, start time.Time, w []byte, err error) error {
	c.stats.inFlight.Add(-1)
	servfail := len(w) >= headerLen && int(w[3]&rcodeMask) == dns.RcodeServerFailure
	c.count(servfail, err, start)
	if err != nil {
		return queryErr(m, err)
	}
	return nil
}

func queryErr(m *dns.Msg, err error) error {
	name := "?"
	if m != nil && len(m.Question) > 0 {
		name = m.Question[0].Name
	}
	return &queryError{name: name, err: err}
}

// queryError names the query an error is about without formatting on the
// hot path.
type queryError struct {
	name string
	err  error
}

func (e *queryError) Error() string { return "exchange " + e.name + ": " + e.err.Error() }
func (e *queryError) Unwrap() error { return e.err }

func (c *Client) count(servfail bool, err error, start time.Time) {
	k := &c.stats
	if err == nil {
		k.answers.Add(1)
		if servfail {
			k.servfail.Add(1)
		}
		k.observe(c.cfg.Now().Sub(start))
		return
	}
	switch {
	case errors.Is(err, ErrTimeout):
		k.timeouts.Add(1)
	case errors.Is(err, context.Canceled):
		k.canceled.Add(1)
	case errors.Is(err, ErrNoServer):
		k.noServer.Add(1)
	case errors.Is(err, ErrBusy):
		k.busy.Add(1)
	case errors.Is(err, ErrConnLost):
		k.connLost.Add(1)
	case errors.Is(err, ErrBadReply):
		k.badReplies.Add(1)
	case errors.Is(err, ErrTruncated):
		k.truncated.Add(1)
	case errors.Is(err, ErrClosed):
		k.closed.Add(1)
	case errors.Is(err, ErrBadQuery):
		k.badQueries.Add(1)
	}
}

// Close fails the calls in flight with ErrClosed, closes every connection
// and waits for every goroutine of the client, timers' functions included:
// no Receive is called after it returns. It is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		close(c.stop)
		c.cancel()
		for _, p := range c.pools {
			p.shutdown()
		}
		c.gmu.Lock()
		c.sealed = true
		c.gmu.Unlock()
		c.wg.Wait()
	})
	return nil
}

// spawn counts a goroutine about to start in wg, and reports false once Close waits: the caller then
// does the work itself or, for a timer, has nothing left to do.
func (c *Client) spawn() bool {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	if c.sealed {
		return false
	}
	c.wg.Add(1)
	return true
}

// Healthy reports whether some server is up: it connected or answered
// since its last run of failures. For /readyz.
func (c *Client) Healthy() bool {
	if c.closed.Load() {
		return false
	}
	for _, p := range c.pools {
		if p.health.up() {
			return true
		}
	}
	return false
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() Stats {
	s := c.stats.snapshot()
	for _, p := range c.pools {
		s.Servers = append(s.Servers, p.stats())
	}
	return s
}

// janitor runs the periodic upkeep of every pool until Close.
func (c *Client) janitor() {
	defer c.wg.Done()
	t := time.NewTimer(janitorTick)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			now := c.nowNS()
			rest := true
			for _, p := range c.pools {
				p.maintain(now)
				rest = rest && p.resting()
			}
			c.janitorSaw.Store(now)
			if rest {
				t.Reset(janitorRestTick)
			} else {
				t.Reset(janitorTick)
			}
		}
	}
}
