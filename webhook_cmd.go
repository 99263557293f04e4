package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os/signal"
	"strings"
	"syscall"

	"github.com/caarlos0/env/v11"

	"github.com/podns/podns/internal/inject"
	"github.com/podns/podns/internal/webhook"
)

// webhookConfig is `podns webhook`'s configuration, from PODNS_* variables as podns's own.
type webhookConfig struct {
	Addr          string   `env:"WEBHOOK_ADDR" envDefault:":8443"`
	CertFile      string   `env:"WEBHOOK_CERT"`
	KeyFile       string   `env:"WEBHOOK_KEY"`
	Image         string   `env:"WEBHOOK_IMAGE"`
	Upstreams     []string `env:"UPSTREAMS"`
	DNSService    string   `env:"WEBHOOK_DNS_SERVICE" envDefault:"kube-dns"`
	ClusterDomain string   `env:"CLUSTER_DOMAIN"`
	CPURequest    string   `env:"WEBHOOK_CPU_REQUEST"`
	MemoryRequest string   `env:"WEBHOOK_MEMORY_REQUEST"`
	CPULimit      string   `env:"WEBHOOK_CPU_LIMIT"`
	MemoryLimit   string   `env:"WEBHOOK_MEMORY_LIMIT"`
	LogLevel      string   `env:"LOG_LEVEL" envDefault:"info"`
	LogFormat     string   `env:"LOG_FORMAT" envDefault:"json"`
}

// Where the kubelet mounts the service account, relative to the filesystem root.
const (
	serviceAccountToken = "var/run/secrets/kubernetes.io/serviceaccount/token"
	serviceAccountCA    = "var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
	// dnsNamespace holds the cluster DNS Service; the webhook's RBAC lets it read Services there only.
	dnsNamespace = "kube-system"
)

func loadWebhookConfig(environ map[string]string) (webhookConfig, error) {
	var c webhookConfig
	if err := env.ParseWithOptions(&c, env.Options{Prefix: envPrefix, Environment: environ}); err != nil {
		return c, fmt.Errorf("%w: %v", errConfig, err)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return c, bad("WEBHOOK_ADDR", c.Addr, err)
	}
	if c.CertFile == "" || c.KeyFile == "" {
		return c, fmt.Errorf("%w: PODNS_WEBHOOK_CERT and PODNS_WEBHOOK_KEY must name the PEM files of the serving certificate", errConfig)
	}
	if c.Image == "" {
		return c, fmt.Errorf("%w: PODNS_WEBHOOK_IMAGE must name the podns image to inject", errConfig)
	}
	for i, u := range c.Upstreams {
		c.Upstreams[i] = strings.TrimSpace(u)
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		return c, bad("LOG_LEVEL", c.LogLevel, errors.New("want debug, info, warn or error"))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return c, bad("LOG_FORMAT", c.LogFormat, errors.New("want json or console"))
	}
	return c, nil
}

// options are the injected values; the resources are the example's with the variables set over them.
func (c webhookConfig) options() (inject.Options, error) {
	opts := inject.Options{Image: c.Image, Upstreams: c.Upstreams, ClusterDomain: c.ClusterDomain}
	probe := opts
	if len(probe.Upstreams) == 0 {
		probe.Upstreams = []string{"192.0.2.53"} // RFC 5737: only to check the rest and read the resources
	}
	in, err := inject.New(probe)
	if err != nil {
		return opts, fmt.Errorf("%w: %v", errConfig, err)
	}
	r := in.Resources()
	set := false
	for _, v := range []struct {
		name, value string
		list        *map[string]string
		res         string
	}{
		{"WEBHOOK_CPU_REQUEST", c.CPURequest, &r.Requests, "cpu"},
		{"WEBHOOK_MEMORY_REQUEST", c.MemoryRequest, &r.Requests, "memory"},
		{"WEBHOOK_CPU_LIMIT", c.CPULimit, &r.Limits, "cpu"},
		{"WEBHOOK_MEMORY_LIMIT", c.MemoryLimit, &r.Limits, "memory"},
	} {
		if v.value == "" {
			continue
		}
		if err := inject.CheckQuantity(v.value); err != nil {
			return opts, bad(v.name, v.value, err)
		}
		if *v.list == nil {
			*v.list = map[string]string{}
		}
		(*v.list)[v.res] = v.value
		set = true
	}
	if set {
		opts.Resources = &r
	}
	return opts, nil
}

// runWebhook is `podns webhook`: it serves until SIGTERM and returns the exit code.
func runWebhook(environ map[string]string, root fs.FS, stderr io.Writer) int {
	c, err := loadWebhookConfig(environ)
	if err == nil {
		err = webhookServe(environ, root, c, stderr)
	}
	if errors.Is(err, errConfig) || errors.Is(err, inject.ErrOptions) {
		fmt.Fprintf(stderr, "podns webhook: %v\n", err)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "podns webhook: %v\n", err)
		return 1
	}
	return 0
}

func webhookServe(environ map[string]string, root fs.FS, c webhookConfig, stderr io.Writer) error {
	opts, err := c.options()
	if err != nil {
		return err
	}
	log := newLogger(config{LogLevel: c.LogLevel, LogFormat: c.LogFormat}, stderr)
	wc := webhook.Config{
		CertFile: c.CertFile,
		KeyFile:  c.KeyFile,
		Options:  opts,
	}
	if len(opts.Upstreams) == 0 {
		ca, _ := fs.ReadFile(root, serviceAccountCA) // a missing CA is reported by the lookup
		api := webhook.APIServer{
			Host:  environ["KUBERNETES_SERVICE_HOST"],
			Port:  environ["KUBERNETES_SERVICE_PORT"],
			Token: func() ([]byte, error) { return fs.ReadFile(root, serviceAccountToken) },
			CA:    ca,
		}
		wc.Upstreams = func(ctx context.Context) ([]string, error) {
			return api.ServiceIPs(ctx, dnsNamespace, c.DNSService)
		}
	}
	srv, err := webhook.New(wc, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", c.Addr, err)
	}
	log.Info().Str("addr", ln.Addr().String()).Str("image", c.Image).Strs("upstreams", opts.Upstreams).Msg("podns webhook started")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return srv.Serve(ctx, ln)
}
