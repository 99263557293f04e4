// Package webhook is podns's mutating admission webhook: an HTTPS server that answers AdmissionReview
// v1 requests for Pods at CREATE with a JSON patch adding podns (package inject). It never fails a pod:
// one it cannot handle is allowed unchanged, with a warning in the response, a log line and a metric,
// so that a webhook problem never stops workloads from starting.
//
// Which pods reach it is the MutatingWebhookConfiguration's business (examples/webhook): pods of
// namespaces labelled podns.io/inject=enabled, and pods annotated podns.io/inject: "true" elsewhere.
// The server itself skips pods annotated podns.io/inject: "false".
package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/podns/podns/internal/inject"
)

// Config of the webhook. Zero values mean the defaults noted.
type Config struct {
	CertFile, KeyFile string         // PEM files; read again when they change (cert-manager rotates them)
	Options           inject.Options // the injected values; Upstreams may be empty when Upstreams is set
	// Upstreams finds the cluster DNS service addresses when Options.Upstreams is empty (the kube-dns
	// Service's ClusterIP, from the API). Retried every RetryInterval until it succeeds; until then
	// pods are allowed unchanged and /readyz fails.
	Upstreams     func(ctx context.Context) ([]string, error)
	RetryInterval time.Duration // default 2 s
	ReadFile      func(name string) ([]byte, error)
}

// defaultRetry: the API server is usually reachable within seconds of the pod starting; retrying
// every 2 s finds it soon without flooding its log.
const defaultRetry = 2 * time.Second

// maxBody bounds an AdmissionReview: the API server sends at most the object and the old object, each
// under etcd's 1.5 MiB limit, JSON-encoded; 8 MiB leaves room for both.
const maxBody = 8 << 20

// Server is the webhook. Create it with New, run it with Serve.
type Server struct {
	cfg      Config
	log      zerolog.Logger
	certs    *certReloader
	injector atomic.Pointer[inject.Injector] // nil until the upstreams are known
	metrics  metrics
}

// New checks cfg and loads the certificate (a missing or bad one is an error at start, not at the
// first handshake).
func New(cfg Config, log zerolog.Logger) (*Server, error) {
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = defaultRetry
	}
	s := &Server{cfg: cfg, log: log.With().Str("component", "webhook").Logger()}
	var err error
	if s.certs, err = newCertReloader(cfg.CertFile, cfg.KeyFile, cfg.ReadFile, s.log, &s.metrics); err != nil {
		return nil, err
	}
	if len(cfg.Options.Upstreams) > 0 {
		in, err := inject.New(cfg.Options)
		if err != nil {
			return nil, err
		}
		s.injector.Store(in)
	} else if cfg.Upstreams == nil {
		return nil, fmt.Errorf("%w: no upstream and no way to find one", inject.ErrOptions)
	} else {
		// Check the other options now: a bad image fails at start, not after the API answers.
		probe := cfg.Options
		probe.Upstreams = []string{"192.0.2.53"} // RFC 5737 documentation address: validation only
		if _, err := inject.New(probe); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Handler serves /mutate, /healthz, /readyz and /metrics.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mutate", s.serveMutate)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", s.serveReady)
	mux.HandleFunc("GET /metrics", s.serveMetrics)
	return mux
}

// TLSConfig serves the current certificate of the PEM files.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.get}
}

// Ready reports whether pods get podns: the upstreams are known.
func (s *Server) Ready() bool { return s.injector.Load() != nil }

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	if !s.Ready() {
		http.Error(w, "cluster DNS address not known yet", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// Serve runs the HTTPS server on ln, and the upstream discovery, until ctx ends; then it stops
// accepting, finishes the requests in flight (up to 10 s) and returns.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         s.TLSConfig(),
		ReadHeaderTimeout: 5 * time.Second,
		// The API server's default webhook timeout is 10 s; a request still running after that is
		// answered to nobody.
		WriteTimeout: 15 * time.Second,
		ErrorLog:     stdlog.New(s.log, "", 0), // TLS handshake errors, as JSON lines
	}
	discoverCtx, stopDiscover := context.WithCancel(ctx)
	discovered := make(chan struct{})
	go func() {
		defer close(discovered)
		s.discover(discoverCtx)
	}()
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(ln, "", "") }()
	var err error
	serving := true
	select {
	case <-ctx.Done():
	case err = <-served:
		serving = false
	}
	stopDiscover()
	<-discovered
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutCtx); err == nil {
		err = serr
	}
	if serving {
		<-served // http.ErrServerClosed, now that Shutdown closed the listener
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// discover finds the upstreams, when they were not configured, retrying until it succeeds or ctx ends.
func (s *Server) discover(ctx context.Context) {
	if s.Ready() {
		return
	}
	t := time.NewTicker(s.cfg.RetryInterval)
	defer t.Stop()
	for {
		ups, err := s.cfg.Upstreams(ctx)
		if err == nil {
			opts := s.cfg.Options
			opts.Upstreams = ups
			in, ierr := inject.New(opts)
			if ierr == nil {
				s.injector.Store(in)
				s.log.Info().Strs("upstreams", ups).Msg("cluster DNS found: injecting")
				return
			}
			err = ierr
		}
		s.log.Warn().Err(err).Dur("retry", s.cfg.RetryInterval).Msg("finding the cluster DNS address")
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
