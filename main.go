// Command podns is a DNS stub resolver for a Kubernetes pod's network namespace: it answers the pod's
// queries on 127.0.0.1:53 (UDP and TCP), expands short names to cluster FQDNs with ClusterFirst's
// semantics, caches, and talks to the cluster DNS service over a few persistent TCP connections.
//
// Usage:
//
//	podns          serve (configured by PODNS_* environment variables; see README.md)
//	podns probe    exit 0 when the local resolver answers (for exec probes in a shell-less image)
//	podns inject   add podns to the pod specs of Kubernetes manifests (stdin to stdout; -h for flags)
//	podns webhook  serve the mutating admission webhook that adds podns to pods (PODNS_WEBHOOK_*)
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/podns/podns/cache"
	"github.com/podns/podns/resolver"
	"github.com/podns/podns/upstream"
)

// shutdownGrace bounds how long podns waits, after the drain, for queries in flight to be answered.
// It is above the resolver's default 3 s query budget, so a query read before the drain ended is
// answered, and under Kubernetes' default 30 s terminationGracePeriodSeconds.
const shutdownGrace = 10 * time.Second

// gcPercent is podns's GOGC when the environment does not set one.
const gcPercent = 50

func main() {
	os.Exit(run(os.Args[1:], environ(), os.Stderr))
}

func environ() map[string]string {
	m := make(map[string]string)
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// run is main without the process: it returns the exit code.
func run(args []string, environ map[string]string, stderr io.Writer) int {
	if len(args) > 0 {
		// These two configure themselves: they are not a resolver.
		switch args[0] {
		case "inject":
			return runInject(args[1:], os.Stdin, os.Stdout, stderr)
		case "webhook":
			return runWebhook(environ, os.DirFS("/"), stderr)
		}
	}
	cfg, err := loadConfig(environ, os.DirFS("/"))
	if len(args) > 0 {
		switch args[0] {
		case "probe":
			if err != nil {
				fmt.Fprintf(stderr, "podns probe: %v\n", err)
				return 2
			}
			return probe(cfg, stderr)
		default:
			fmt.Fprintf(stderr, "podns: unknown command %q (want no argument, probe, inject or webhook)\n", args[0])
			return 2
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "podns: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	// Package initialization and reading the configuration are over, and most of what they mapped of
	// the binary will not be used again (pages_linux.go).
	if n, err := releaseBinaryPages(); err != nil {
		log.Warn().Err(err).Msg("could not release the binary's pages from startup: RSS stays higher")
	} else {
		log.Debug().Int("bytes", n).Msg("released the binary's pages from startup")
	}
	if _, set := environ["GOGC"]; !set {
		// The cache is most of the live heap; at Go's default GOGC=100 the heap grows to twice it before
		// a collection. 50 keeps a sidecar's peak RSS near 20 MiB under a flood of unique names (README,
		// "Memory") for a little more GC work on cache misses.
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, log, nil); err != nil {
		log.Error().Err(err).Msg("podns stopped")
		return 1
	}
	return 0
}

func newLogger(cfg config, w io.Writer) zerolog.Logger {
	if cfg.LogFormat == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339}
	}
	level, _ := zerolog.ParseLevel(cfg.LogLevel) // validated by loadConfig
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// app is a running podns.
type app struct {
	cfg      config
	srv      *resolver.Server
	up       *upstream.Client
	cache    *cache.Cache
	http     *http.Server // nil when PODNS_HTTP_ADDR is empty
	httpAddr net.Addr
	draining atomic.Bool
}

// serve runs podns until ctx ends (SIGTERM), then drains and stops. started, when not nil, is called
// once everything listens (tests use it to learn the bound addresses).
func serve(ctx context.Context, cfg config, log zerolog.Logger, started func(*app)) error {
	a, err := start(cfg, log)
	if err != nil {
		return err
	}
	log.Info().Object("config", cfg).Strs("listen", addrStrings(a.srv.Addrs())).Msg("podns started")
	if started != nil {
		started(a)
	}
	<-ctx.Done()
	return a.stop(log)
}

func start(cfg config, log zerolog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg}
	a.cache, err = cache.New(cache.Config{
		MaxBytes:  int(cfg.CacheBytes),
		MinTTL:    cfg.CacheMinTTL,
		MaxTTL:    cfg.CacheMaxTTL,
		NegMaxTTL: cfg.CacheNegMaxTTL,
		StaleFor:  staleFor(cfg.ServeStale),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: cache: %v", errConfig, err)
	}
	a.up, err = upstream.New(upstream.Config{
		Servers:           cfg.Upstreams,
		ConnsPerServer:    cfg.UpstreamConns,
		MaxConnsPerServer: cfg.UpstreamMaxConns,
		MaxAge:            cfg.UpstreamMaxAge,
		Timeout:           cfg.Timeout, // the resolver leaves a lookup's deadline to the client
	}, log) // upstream.New tags its own component
	if err != nil {
		return nil, fmt.Errorf("%w: upstream: %v", errConfig, err)
	}
	defer func() {
		if err != nil { // undo what started, in reverse
			if a.srv != nil {
				a.srv.Shutdown(context.Background())
			}
			a.up.Close()
		}
	}()
	srv, err := resolver.New(resolver.Config{
		Listen:        cfg.Listen,
		Search:        cfg.Search,
		Ndots:         cfg.Ndots,
		ClusterDomain: cfg.ClusterDomain,
		NoSearch:      cfg.NoSearch,
		Timeout:       cfg.Timeout,
		AAAAFilter:    cfg.AAAA == "filter",
	}, a.up, a.cache, log)
	if err != nil {
		return nil, err
	}
	// A busy UDP reader keeps its P (resolver.udpSocket): make sure the rest of podns has one.
	if n := srv.MinProcs(); runtime.GOMAXPROCS(0) < n {
		runtime.GOMAXPROCS(n)
	}
	if err = srv.Start(); err != nil {
		return nil, err
	}
	a.srv = srv
	if cfg.HTTPAddr != "" {
		if err = a.startHTTP(log); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// staleFor maps PODNS_SERVE_STALE (0 = off) to the cache's setting (negative = off).
func staleFor(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// stop drains: podns keeps answering for PODNS_DRAIN (a native sidecar is stopped after the app, a
// classic one at the same time as the app, which may still be resolving), then stops reading, answers
// what it has read, and closes.
func (a *app) stop(log zerolog.Logger) error {
	a.draining.Store(true)
	log.Info().Dur("drain", a.cfg.Drain).Msg("terminating: still answering during the drain")
	time.Sleep(a.cfg.Drain)
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	if a.http != nil {
		a.http.Shutdown(ctx)
	}
	if cerr := a.up.Close(); err == nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	log.Info().Msg("stopped")
	return nil
}

func addrStrings(addrs []net.Addr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = a.String()
	}
	return out
}

// MarshalZerologObject logs the effective configuration as one object.
func (c config) MarshalZerologObject(e *zerolog.Event) {
	e.Strs("listen", c.Listen).Strs("upstreams", c.Upstreams).Str("namespace", c.Namespace).
		Str("cluster_domain", c.ClusterDomain).Strs("search", c.Search).Int("ndots", c.Ndots).
		Strs("no_search", c.NoSearch).Str("log_level", c.LogLevel).Str("http_addr", c.HTTPAddr).
		Dur("drain", c.Drain).Dur("timeout", c.Timeout).Int("upstream_conns", c.UpstreamConns).Int("upstream_max_conns", c.UpstreamMaxConns).
		Dur("upstream_max_age", c.UpstreamMaxAge).Int("cache_bytes", int(c.CacheBytes)).
		Dur("cache_min_ttl", c.CacheMinTTL).Dur("cache_max_ttl", c.CacheMaxTTL).
		Dur("cache_neg_max_ttl", c.CacheNegMaxTTL).Dur("serve_stale", c.ServeStale).Str("aaaa", c.AAAA)
}
