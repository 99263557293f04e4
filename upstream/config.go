package upstream

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Config configures a Client. The zero value of every field but Servers means
// the documented default, so main only sets what the environment overrides.
type Config struct {
	// Servers are "host:port" addresses with IPv4 or IPv6 literals, in
	// failover order. Required, non-empty.
	Servers []string

	// ConnsPerServer is the number of connections dialed when the client
	// starts, and dialed again in place of one retired (max age, query
	// limit) or lost while the server is in use (PODNS_UPSTREAM_CONNS).
	// More open on demand; any connection idle for IdleTimeout closes and is
	// not replaced, so a quiet pod holds none. Default 1.
	ConnsPerServer int

	// MaxConnsPerServer bounds the connections to one server that take
	// queries (PODNS_UPSTREAM_MAX_CONNS). CoreDNS answers a connection's
	// queries one at a time, so a query goes to a connection with nothing
	// outstanding, or a new one: the bound is how many queries may be
	// outstanding behind slow answers (CoreDNS forwards to the outside: up to
	// 2 s) before the next waits for a connection to come free. Default 64:
	// twice the ~30 slow answers outstanding at 2,000 queries/s with 5% of
	// them 300 ms late, and at the cluster DNS at most 64 goroutines and
	// sockets for one pod. Connections being retired wait only for their
	// last answers and are not counted, so at most twice as many are open.
	MaxConnsPerServer int

	// MaxInFlight caps the queries outstanding on one connection of a server
	// seen answering out of order (Knot, Unbound), which shares connections.
	// Default 32: it bounds how many queries must be re-sent when a
	// connection dies and keeps ID collisions rare (32/65536).
	MaxInFlight int

	// Timeout bounds an Exchange whose ctx has no deadline. Default 2s.
	Timeout time.Duration

	// HedgeAfter is how long a query waits for its answer before it is asked
	// again on another connection. Default 500ms: longer than a CoreDNS
	// forward to the outside usually takes (so slow answers are not asked
	// twice), short enough that a lost query is answered well within the
	// caller's deadline and far before glibc's 5 s retry.
	HedgeAfter time.Duration

	// IdleTimeout closes a connection idle this long, before the server
	// would (CoreDNS: 10 s, miekg/dns: 8 s), so that no query races the
	// server's close. Default 5s. A shorter timeout announced by the server
	// (RFC 7828) wins.
	IdleTimeout time.Duration

	// MaxAge retires a connection this old (minus up to 20% jitter), so
	// load spreads again over CoreDNS pods behind a ClusterIP
	// (PODNS_UPSTREAM_MAX_AGE). Default 5m.
	MaxAge time.Duration

	// DialTimeout bounds one TCP connect. Default 1s.
	DialTimeout time.Duration

	// Dial opens connections; nil means a net.Dialer. Tests inject faults.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	// Now is the clock; nil means time.Now. Tests inject a fake clock.
	Now func() time.Time
}

// Defaults for the zero values of Config; each is explained on its field.
const (
	defaultConnsPerServer    = 1
	defaultMaxConnsPerServer = 64
	defaultMaxInFlight       = 32
	defaultTimeout           = 2 * time.Second
	defaultHedgeAfter        = 500 * time.Millisecond
	defaultIdleTimeout       = 5 * time.Second
	defaultMaxAge            = 5 * time.Minute
	defaultDialTimeout       = time.Second

	// maxInFlightLimit keeps the random ID search fast: with at most 4096 of
	// 65536 IDs taken, a random pick is free with probability ≥ 15/16.
	maxInFlightLimit = 4096
)

// withDefaults returns cfg with defaults filled in, or an error wrapping
// ErrConfig.
func (cfg Config) withDefaults() (Config, error) {
	if len(cfg.Servers) == 0 {
		return cfg, fmt.Errorf("%w: no servers", ErrConfig)
	}
	cfg.Servers = append([]string(nil), cfg.Servers...)
	seen := make(map[netip.AddrPort]bool, len(cfg.Servers))
	for i, s := range cfg.Servers {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return cfg, fmt.Errorf("%w: server %q: want an IP literal and a port: %w", ErrConfig, s, err)
		}
		if ap.Port() == 0 {
			return cfg, fmt.Errorf("%w: server %q: port 0", ErrConfig, s)
		}
		if seen[ap] {
			return cfg, fmt.Errorf("%w: server %q listed twice", ErrConfig, s)
		}
		seen[ap] = true
		cfg.Servers[i] = ap.String()
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"ConnsPerServer", cfg.ConnsPerServer}, {"MaxConnsPerServer", cfg.MaxConnsPerServer}, {"MaxInFlight", cfg.MaxInFlight}} {
		if f.v < 0 {
			return cfg, fmt.Errorf("%w: %s %d is negative", ErrConfig, f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"Timeout", cfg.Timeout}, {"HedgeAfter", cfg.HedgeAfter}, {"IdleTimeout", cfg.IdleTimeout},
		{"MaxAge", cfg.MaxAge}, {"DialTimeout", cfg.DialTimeout},
	} {
		if f.v < 0 {
			return cfg, fmt.Errorf("%w: %s %v is negative", ErrConfig, f.name, f.v)
		}
	}
	if cfg.ConnsPerServer == 0 {
		cfg.ConnsPerServer = defaultConnsPerServer
	}
	if cfg.MaxConnsPerServer == 0 {
		cfg.MaxConnsPerServer = max(defaultMaxConnsPerServer, cfg.ConnsPerServer)
	}
	if cfg.MaxConnsPerServer < cfg.ConnsPerServer {
		return cfg, fmt.Errorf("%w: MaxConnsPerServer %d < ConnsPerServer %d", ErrConfig, cfg.MaxConnsPerServer, cfg.ConnsPerServer)
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = defaultMaxInFlight
	}
	if cfg.MaxInFlight > maxInFlightLimit {
		return cfg, fmt.Errorf("%w: MaxInFlight %d > %d", ErrConfig, cfg.MaxInFlight, maxInFlightLimit)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.HedgeAfter == 0 {
		cfg.HedgeAfter = defaultHedgeAfter
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = defaultMaxAge
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.Dial == nil {
		var d net.Dialer
		cfg.Dial = d.DialContext
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}
