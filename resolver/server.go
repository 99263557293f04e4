// Package resolver is podns's DNS server: the UDP and TCP listeners a pod's clients talk to, the query
// pipeline (parse, search expansion, cache, coalescing, upstream), and the shaping of replies.
package resolver

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/rs/zerolog"

	"github.com/podns/podns/cache"
)

// Upstream is the cluster DNS as the resolver asks it; upstream.Client satisfies it. A query is sent
// with no goroutine waiting for its reply: the reply, in wire form and without its OPT record (per hop,
// RFC 6891 §6.1.1), or the error, is handed to r.Receive on the goroutine that read it, within the
// upstream's own timeout. Queue is ExchangeAsync for a query written at the next Flush, in one write
// with the others queued meanwhile.
type Upstream interface {
	ExchangeAsync(m *dns.Msg, r receiver)
	Queue(m *dns.Msg, r receiver)
	Flush()
}

// receiver is told an Upstream's reply (upstream.Receiver: the same type, by alias, so that the
// resolver need not import the upstream package).
type receiver = interface{ Receive(wire []byte, err error) }

// Config configures a Server. Zero values mean the documented defaults, except Ndots, which is taken
// as it is (ndots:0 is a valid resolv.conf setting).
type Config struct {
	Listen []string // host:port addresses, each served on UDP and TCP; required
	Search []string // search domains, in order (ClusterFirst: <ns>.svc.<domain>, svc.<domain>, <domain>)
	Ndots  int      // as in resolv.conf
	// ClusterDomain ("cluster.local"): names under it are never searched, and the NXDOMAINs of search
	// candidates under it are kept as cuts (RFC 8020) that answer later candidates without a query.
	ClusterDomain string
	NoSearch      []string // more suffixes whose names go upstream as they are

	// Timeout bounds a search walk. Default 3s: inside the 5 s that glibc and musl wait before they
	// retry, so a client hears SERVFAIL (and moves on) rather than silence. A single upstream lookup
	// is bounded by the Upstream (main gives upstream.Client the same value).
	Timeout time.Duration
	// StaleWait is how long a refresh of an expired entry may take before the stale answer goes out
	// (RFC 8767 §5's "client response timer", which suggests 1.8 s; a sidecar on loopback can be
	// quicker to fall back). Default 400ms.
	StaleWait time.Duration
	// MaxInFlight caps the client queries being resolved at once (cache misses), so memory stays bounded
	// under a flood of unique names; over the cap a query gets SERVFAIL at once. Default 4096.
	MaxInFlight int
	// MaxTCPConns caps concurrent client TCP connections. Default 256.
	MaxTCPConns int
	// TCPIdle closes a client TCP connection idle this long (RFC 7766 §6.2.3). Default 10s.
	TCPIdle time.Duration
	// Readers is the number of threads reading each UDP socket. Default 1: one reader answers cache
	// hits at well over 50k queries a second, and a busy reader holds one of GOMAXPROCS's Ps (see
	// udpSocket), so the process needs GOMAXPROCS above Readers × len(Listen); MinProcs says how many.
	Readers int
	// AAAAFilter answers AAAA questions locally with NODATA (for IPv4-only clusters).
	AAAAFilter bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// askAheadAfter is askAheadAfter, but for tests that count queries and must not see a walk hedge
	// because a loaded machine stalled it.
	askAheadAfter time.Duration
}

const (
	defaultTimeout     = 3 * time.Second
	defaultStaleWait   = 400 * time.Millisecond
	defaultMaxInFlight = 4096
	defaultMaxTCPConns = 256
	defaultTCPIdle     = 10 * time.Second
	// ednsUDPSize is the payload size podns advertises: the DNS Flag Day 2020 value, which fits any
	// path's MTU without fragmentation.
	ednsUDPSize = 1232
	// maxUDPQuery is the largest query read from UDP; real queries are under 300 bytes, so a larger
	// packet is cut and answered FORMERR.
	maxUDPQuery = 4096
)

// ErrNoListen is returned by New when Config.Listen is empty.
var ErrNoListen = errors.New("no listen address")

// Server answers a pod's DNS queries. Create it with New, start it with Start, stop it with Shutdown.
type Server struct {
	cfg    Config
	log    zerolog.Logger
	up     Upstream
	cache  *cache.Cache
	search searcher
	now    func() time.Time
	sem    chan struct{} // slow-path slots; never nil after New
	stats  stats
	pairs  pairGauge // whether direct lookups pair A with AAAA

	flights   flightTable
	refreshes refresher // hot entries' refreshes, each due at its entry's expiry

	// bg owns background work (search walks run as calls, cut probes); Shutdown cancels it last, then
	// waits for bgWG. background starts such work, under bgMu, until bgStopped.
	bg        context.Context
	bgCancel  context.CancelFunc
	bgWG      sync.WaitGroup
	bgMu      sync.Mutex
	bgStopped bool

	handlers sync.WaitGroup // queries being answered; Shutdown waits for them
	loops    sync.WaitGroup // reader and accept loops

	closing atomic.Bool // set once, under mu: read by every packet without the lock

	mu       sync.Mutex // guards the fields below
	udp      []*udpSocket
	tcp      []net.Listener
	tcpConns map[net.Conn]struct{}
}

// New builds a Server; nothing is bound until Start.
func New(cfg Config, up Upstream, c *cache.Cache, log zerolog.Logger) (*Server, error) {
	if len(cfg.Listen) == 0 {
		return nil, ErrNoListen
	}
	if up == nil || c == nil {
		return nil, errors.New("resolver needs an exchanger and a cache")
	}
	if cfg.Ndots < 0 || cfg.Ndots > 15 { // glibc caps ndots at 15 (RES_MAXNDOTS)
		return nil, fmt.Errorf("ndots %d: want 0 to 15", cfg.Ndots)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.StaleWait <= 0 {
		cfg.StaleWait = defaultStaleWait
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = defaultMaxInFlight
	}
	if cfg.MaxTCPConns <= 0 {
		cfg.MaxTCPConns = defaultMaxTCPConns
	}
	if cfg.TCPIdle <= 0 {
		cfg.TCPIdle = defaultTCPIdle
	}
	if cfg.Readers <= 0 {
		cfg.Readers = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.askAheadAfter <= 0 {
		cfg.askAheadAfter = askAheadAfter
	}
	bg, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:      cfg,
		log:      log.With().Str("component", "resolver").Logger(),
		up:       up,
		cache:    c,
		search:   newSearcher(cfg.Search, cfg.Ndots, cfg.ClusterDomain, cfg.NoSearch),
		now:      cfg.Now,
		sem:      make(chan struct{}, cfg.MaxInFlight),
		bg:       bg,
		bgCancel: cancel,
		tcpConns: make(map[net.Conn]struct{}),
	}
	s.flights.calls = make(map[string]*call)
	s.refreshes.kick = make(chan struct{}, 1)
	s.pairs.seed = maphash.MakeSeed()
	return s, nil
}

// MinProcs is the least GOMAXPROCS that leaves a P for everything but the UDP readers.
func (s *Server) MinProcs() int { return s.cfg.Readers*len(s.cfg.Listen) + 1 }

// Start binds every listen address on UDP and TCP and starts serving. On error nothing stays bound.
func (s *Server) Start() error {
	for _, addr := range s.cfg.Listen {
		pc, ln, err := listenPair(addr)
		if err != nil {
			s.closeListeners()
			return err
		}
		s.mu.Lock()
		s.udp = append(s.udp, pc)
		s.tcp = append(s.tcp, ln)
		s.mu.Unlock()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pc := range s.udp {
		pc.misses.readers = s.cfg.Readers
		s.loops.Add(1)
		go s.dispatch(pc)
		for i := 0; i < s.cfg.Readers; i++ {
			s.loops.Add(1)
			go s.serveUDP(pc)
		}
	}
	for _, ln := range s.tcp {
		s.loops.Add(1)
		go s.serveTCP(ln)
	}
	return nil
}

// listenPair binds addr on UDP and TCP. With port 0 (tests), TCP takes the port UDP got, and the pair
// is tried again when another socket already holds that TCP port.
func listenPair(addr string) (*udpSocket, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		pc, err := listenUDP(addr)
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" || attempt == 10 {
			return nil, nil, fmt.Errorf("listening on tcp %s: %w", addr, err)
		}
	}
}

// Addrs returns the bound UDP addresses (the TCP ones are the same), in Listen order.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, 0, len(s.udp))
	for _, pc := range s.udp {
		out = append(out, pc.LocalAddr())
	}
	return out
}

// Listening reports whether the listeners are up (for readiness).
func (s *Server) Listening() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.udp) > 0 && !s.closing.Load()
}

// Shutdown stops reading new queries, answers every query already read, then closes the sockets. It
// returns ctx's error if the queries in flight outlive ctx (their sockets are closed all the same).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	// Wake the readers without closing the sockets: replies still in flight are written on them.
	past := time.Unix(1, 0)
	for _, pc := range s.udp {
		pc.wake()
	}
	for _, ln := range s.tcp {
		ln.Close()
	}
	for c := range s.tcpConns {
		c.SetReadDeadline(past)
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.loops.Wait()
		s.handlers.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("waiting for queries in flight: %w", ctx.Err())
	}
	s.closeListeners()
	s.bgCancel()
	s.bgMu.Lock()
	s.bgStopped = true // no background work starts after this: bgWG.Add never races bgWG.Wait
	s.bgMu.Unlock()
	s.bgWG.Wait()
	<-done
	return err
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing.Store(true)
	for _, pc := range s.udp {
		pc.Close()
	}
	for _, ln := range s.tcp {
		ln.Close()
	}
	for c := range s.tcpConns {
		c.Close()
	}
}

// acquire takes a slow-path slot without waiting; false means podns is saturated.
func (s *Server) acquire() bool {
	select {
	case s.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *Server) release() { <-s.sem }
