package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/miekg/dns"
)

// config is podns's whole configuration, read from PODNS_* environment variables (and nowhere else).
type config struct {
	Listen           []string      `env:"LISTEN" envDefault:"127.0.0.1:53"`
	Upstreams        []string      `env:"UPSTREAMS"`
	Namespace        string        `env:"NAMESPACE"`
	ClusterDomain    string        `env:"CLUSTER_DOMAIN" envDefault:"cluster.local"`
	Search           []string      `env:"SEARCH"`
	Ndots            int           `env:"NDOTS" envDefault:"5"`
	NoSearch         []string      `env:"NO_SEARCH"`
	LogLevel         string        `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat        string        `env:"LOG_FORMAT" envDefault:"json"`
	HTTPAddr         string        `env:"HTTP_ADDR"` // default applied by loadConfig: empty means off
	Drain            time.Duration `env:"DRAIN" envDefault:"5s"`
	Timeout          time.Duration `env:"TIMEOUT" envDefault:"3s"`
	UpstreamConns    int           `env:"UPSTREAM_CONNS" envDefault:"1"`
	UpstreamMaxConns int           `env:"UPSTREAM_MAX_CONNS" envDefault:"64"`
	UpstreamMaxAge   time.Duration `env:"UPSTREAM_MAX_AGE" envDefault:"5m"`
	CacheBytes       byteSize      `env:"CACHE_BYTES" envDefault:"4Mi"`
	CacheMinTTL      time.Duration `env:"CACHE_MIN_TTL" envDefault:"0s"`
	CacheMaxTTL      time.Duration `env:"CACHE_MAX_TTL" envDefault:"1h"`
	CacheNegMaxTTL   time.Duration `env:"CACHE_NEG_MAX_TTL" envDefault:"5m"`
	ServeStale       time.Duration `env:"SERVE_STALE" envDefault:"1h"`
	AAAA             string        `env:"AAAA" envDefault:"allow"`
}

const (
	envPrefix       = "PODNS_"
	defaultHTTPAddr = ":9153"
	// namespaceFile is where Kubernetes mounts the pod's service-account namespace.
	namespaceFile = "var/run/secrets/kubernetes.io/serviceaccount/namespace"
	resolvConf    = "etc/resolv.conf"
)

// errConfig marks configuration errors: podns exits 2 on them, naming the variable.
var errConfig = errors.New("configuration")

// loadConfig reads the configuration from environ (PODNS_* keys) and, for the defaults that come from
// the pod, files under root (the namespace file and /etc/resolv.conf); a nil root has no files.
func loadConfig(environ map[string]string, root fs.FS) (config, error) {
	if root == nil {
		root = noFiles{}
	}
	var cfg config
	if err := env.ParseWithOptions(&cfg, env.Options{Prefix: envPrefix, Environment: environ}); err != nil {
		return cfg, parseError(err, environ)
	}
	if v, ok := environ[envPrefix+"HTTP_ADDR"]; ok {
		cfg.HTTPAddr = strings.TrimSpace(v)
	} else {
		cfg.HTTPAddr = defaultHTTPAddr
	}
	if cfg.Namespace == "" {
		if b, err := fs.ReadFile(root, namespaceFile); err == nil {
			cfg.Namespace = strings.TrimSpace(string(b))
		}
	}
	if len(cfg.Upstreams) == 0 {
		b, err := fs.ReadFile(root, resolvConf)
		if err != nil {
			return cfg, fmt.Errorf("%w: PODNS_UPSTREAMS is not set and /etc/resolv.conf cannot be read (%v): set PODNS_UPSTREAMS to the cluster DNS service IP", errConfig, err)
		}
		rc, err := dns.ClientConfigFromReader(bytes.NewReader(b))
		if err != nil {
			return cfg, fmt.Errorf("%w: PODNS_UPSTREAMS is not set and /etc/resolv.conf cannot be parsed (%v)", errConfig, err)
		}
		cfg.Upstreams = rc.Servers
	}
	return cfg, cfg.normalize()
}

// normalize validates every value and puts addresses and names in canonical form.
func (c *config) normalize() error {
	var err error
	for i, a := range c.Listen {
		if c.Listen[i], err = hostPort(a, "53"); err != nil {
			return bad("LISTEN", a, err)
		}
	}
	if len(c.Listen) == 0 {
		return bad("LISTEN", "", errors.New("at least one address is needed"))
	}
	if len(c.Upstreams) == 0 {
		return fmt.Errorf("%w: no upstream: set PODNS_UPSTREAMS to the cluster DNS service IP (e.g. 10.96.0.10)", errConfig)
	}
	for i, a := range c.Upstreams {
		if c.Upstreams[i], err = hostPort(a, "53"); err != nil {
			return bad("UPSTREAMS", a, err)
		}
		if own := c.ownAddress(c.Upstreams[i]); own != "" {
			return fmt.Errorf("%w: PODNS_UPSTREAMS: %s is podns's own listen address %s (in a pod, the sidecar's /etc/resolv.conf points at podns itself): set PODNS_UPSTREAMS to the cluster DNS service IP, e.g. 10.96.0.10", errConfig, c.Upstreams[i], own)
		}
	}
	if _, ok := dns.IsDomainName(c.ClusterDomain); !ok || strings.Trim(c.ClusterDomain, ".") == "" {
		return bad("CLUSTER_DOMAIN", c.ClusterDomain, errors.New("not a domain name"))
	}
	c.ClusterDomain = strings.ToLower(strings.Trim(c.ClusterDomain, "."))
	if c.Search == nil {
		if c.Namespace != "" {
			c.Search = append(c.Search, c.Namespace+".svc."+c.ClusterDomain)
		}
		c.Search = append(c.Search, "svc."+c.ClusterDomain, c.ClusterDomain)
	}
	for _, d := range append(c.Search, c.NoSearch...) {
		if _, ok := dns.IsDomainName(d); !ok {
			return bad("SEARCH or PODNS_NO_SEARCH", d, errors.New("not a domain name"))
		}
	}
	if c.Ndots < 0 || c.Ndots > 15 {
		return bad("NDOTS", strconv.Itoa(c.Ndots), errors.New("want 0 to 15, as resolv.conf"))
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		return bad("LOG_LEVEL", c.LogLevel, errors.New("want debug, info, warn or error"))
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		return bad("LOG_FORMAT", c.LogFormat, errors.New("want json or console"))
	}
	if c.HTTPAddr == "off" {
		c.HTTPAddr = ""
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			return bad("HTTP_ADDR", c.HTTPAddr, err)
		}
	}
	switch c.AAAA {
	case "allow", "filter":
	default:
		return bad("AAAA", c.AAAA, errors.New("want allow or filter"))
	}
	for name, d := range map[string]time.Duration{"DRAIN": c.Drain, "UPSTREAM_MAX_AGE": c.UpstreamMaxAge,
		"CACHE_MIN_TTL": c.CacheMinTTL, "CACHE_MAX_TTL": c.CacheMaxTTL, "CACHE_NEG_MAX_TTL": c.CacheNegMaxTTL,
		"SERVE_STALE": c.ServeStale} {
		if d < 0 {
			return bad(name, d.String(), errors.New("must not be negative"))
		}
	}
	if c.Timeout <= 0 {
		return bad("TIMEOUT", c.Timeout.String(), errors.New("must be positive"))
	}
	if c.UpstreamConns < 1 || c.UpstreamConns > 64 {
		return bad("UPSTREAM_CONNS", strconv.Itoa(c.UpstreamConns), errors.New("want 1 to 64"))
	}
	// 1024: a pod with more queries outstanding behind slow answers than that has a problem no
	// connection count solves, and each connection is a goroutine and a socket at the cluster DNS.
	if c.UpstreamMaxConns < c.UpstreamConns || c.UpstreamMaxConns > 1024 {
		return bad("UPSTREAM_MAX_CONNS", strconv.Itoa(c.UpstreamMaxConns),
			fmt.Errorf("want PODNS_UPSTREAM_CONNS (%d) to 1024", c.UpstreamConns))
	}
	if c.CacheMinTTL > c.CacheMaxTTL {
		return bad("CACHE_MIN_TTL", c.CacheMinTTL.String(), fmt.Errorf("above PODNS_CACHE_MAX_TTL %s", c.CacheMaxTTL))
	}
	return nil
}

// parseError restates env's errors, which name struct fields, with the variable and the value.
func parseError(err error, environ map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("%w: %v", errConfig, err)
	}
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			msgs = append(msgs, e.Error())
			continue
		}
		key := pe.Name
		if f, ok := reflect.TypeFor[config]().FieldByName(pe.Name); ok {
			key = envPrefix + strings.Split(f.Tag.Get("env"), ",")[0]
		}
		msgs = append(msgs, fmt.Sprintf("%s=%q: %v", key, environ[key], pe.Err))
	}
	return fmt.Errorf("%w: %s", errConfig, strings.Join(msgs, "; "))
}

func bad(name, value string, err error) error {
	return fmt.Errorf("%w: PODNS_%s=%q: %v", errConfig, name, value, err)
}

// hostPort checks an IP address with an optional port and returns it as ip:port.
func hostPort(s, defPort string) (string, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.String(), nil
	}
	addr, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return "", errors.New("want an IP address with an optional :port")
	}
	return net.JoinHostPort(addr.String(), defPort), nil
}

// ownAddress returns the listen address that upstream would reach, if any: the same address, or a
// wildcard listen address on the same port when upstream is a loopback address.
func (c *config) ownAddress(upstream string) string {
	up := netip.MustParseAddrPort(upstream)
	for _, l := range c.Listen {
		ln := netip.MustParseAddrPort(l)
		if ln.Port() != up.Port() {
			continue
		}
		if ln.Addr() == up.Addr() || (ln.Addr().IsUnspecified() && up.Addr().IsLoopback()) {
			return l
		}
	}
	return ""
}

// byteSize is a size in bytes written as a number with an optional Ki, Mi or Gi suffix (as Kubernetes
// quantities are).
type byteSize int

func (b *byteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := 1
	for suffix, m := range map[string]int{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if t, ok := strings.CutSuffix(strings.TrimSuffix(s, "B"), suffix); ok {
			s, mult = t, m
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return fmt.Errorf("size %q: want bytes, or a number with Ki, Mi or Gi", text)
	}
	*b = byteSize(n * mult)
	return nil
}

// noFiles is a filesystem without files.
type noFiles struct{}

func (noFiles) Open(name string) (fs.File, error) {
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}
