package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// podFS is a pod's filesystem as the sidecar sees it: its resolv.conf points at podns itself.
func podFS(resolv string) fstest.MapFS {
	return fstest.MapFS{
		"etc/resolv.conf": {Data: []byte(resolv)},
		"var/run/secrets/kubernetes.io/serviceaccount/namespace": {Data: []byte("apps\n")},
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(map[string]string{}, podFS("nameserver 10.96.0.10\nsearch x.svc.cluster.local\noptions ndots:5\n"))
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", cfg.Listen, []string{"127.0.0.1:53"}},
		{"upstreams", cfg.Upstreams, []string{"10.96.0.10:53"}},
		{"namespace", cfg.Namespace, "apps"},
		{"search", cfg.Search, []string{"apps.svc.cluster.local", "svc.cluster.local", "cluster.local"}},
		{"ndots", cfg.Ndots, 5},
		{"http", cfg.HTTPAddr, ":9153"},
		{"cache bytes", int(cfg.CacheBytes), 4 << 20},
		{"aaaa", cfg.AAAA, "allow"},
	}
	for _, c := range checks {
		if g, w := fmt.Sprint(c.got), fmt.Sprint(c.want); g != w {
			t.Errorf("%s got %s, want %s", c.name, g, w)
		}
	}
}

func TestConfigValues(t *testing.T) {
	env := map[string]string{
		"PODNS_LISTEN":         "127.0.0.1:5353, [::1]:5353",
		"PODNS_UPSTREAMS":      "10.96.0.10,10.96.0.11:1053,fd00::10",
		"PODNS_NAMESPACE":      "web",
		"PODNS_CLUSTER_DOMAIN": "Corp.Local.",
		"PODNS_NDOTS":          "2",
		"PODNS_HTTP_ADDR":      "",
		"PODNS_CACHE_BYTES":    "16Mi",
		"PODNS_AAAA":           "filter",
	}
	cfg, err := loadConfig(env, fstest.MapFS{})
	if err != nil {
		t.Fatalf("loadConfig: %v", err)
	}
	if want := []string{"127.0.0.1:5353", "[::1]:5353"}; !slices.Equal(cfg.Listen, want) {
		t.Errorf("listen got %v, want %v", cfg.Listen, want)
	}
	if want := []string{"10.96.0.10:53", "10.96.0.11:1053", "[fd00::10]:53"}; !slices.Equal(cfg.Upstreams, want) {
		t.Errorf("upstreams got %v, want %v", cfg.Upstreams, want)
	}
	if want := []string{"web.svc.corp.local", "svc.corp.local", "corp.local"}; !slices.Equal(cfg.Search, want) {
		t.Errorf("search got %v, want %v", cfg.Search, want)
	}
	if cfg.HTTPAddr != "" || cfg.CacheBytes != 16<<20 || cfg.Ndots != 2 || cfg.AAAA != "filter" {
		t.Errorf("got http %q bytes %d ndots %d aaaa %s, want \"\" %d 2 filter", cfg.HTTPAddr, cfg.CacheBytes, cfg.Ndots, cfg.AAAA, 16<<20)
	}
}

// TestConfigErrors: a bad value stops podns with a message naming the variable and the value.
func TestConfigErrors(t *testing.T) {
	base := map[string]string{"PODNS_UPSTREAMS": "10.96.0.10"}
	tests := []struct {
		key, value string
		want       []string // substrings of the message
	}{
		{"PODNS_NDOTS", "five", []string{"PODNS_NDOTS", "five"}},
		{"PODNS_NDOTS", "16", []string{"PODNS_NDOTS", "16"}},
		{"PODNS_LISTEN", "localhost:53", []string{"PODNS_LISTEN", "localhost:53"}},
		{"PODNS_UPSTREAMS", "kube-dns", []string{"PODNS_UPSTREAMS", "kube-dns"}},
		{"PODNS_UPSTREAMS", "127.0.0.1", []string{"PODNS_UPSTREAMS", "own listen address", "cluster DNS service IP"}},
		{"PODNS_DRAIN", "5", []string{"PODNS_DRAIN", "5"}},
		{"PODNS_CACHE_BYTES", "8MB!", []string{"PODNS_CACHE_BYTES", "8MB!"}},
		{"PODNS_LOG_LEVEL", "loud", []string{"PODNS_LOG_LEVEL", "loud"}},
		{"PODNS_LOG_FORMAT", "xml", []string{"PODNS_LOG_FORMAT", "xml"}},
		{"PODNS_AAAA", "maybe", []string{"PODNS_AAAA", "maybe"}},
		{"PODNS_CLUSTER_DOMAIN", "bad..domain", []string{"PODNS_CLUSTER_DOMAIN", "bad..domain"}},
		{"PODNS_HTTP_ADDR", "9153", []string{"PODNS_HTTP_ADDR", "9153"}},
		{"PODNS_UPSTREAM_CONNS", "0", []string{"PODNS_UPSTREAM_CONNS", "0"}},
		{"PODNS_UPSTREAM_MAX_CONNS", "0", []string{"PODNS_UPSTREAM_MAX_CONNS", "0"}},
		{"PODNS_UPSTREAM_MAX_CONNS", "2000", []string{"PODNS_UPSTREAM_MAX_CONNS", "2000", "1024"}},
		{"PODNS_CACHE_MIN_TTL", "2h", []string{"PODNS_CACHE_MIN_TTL", "PODNS_CACHE_MAX_TTL"}},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			env[tt.key] = tt.value
			_, err := loadConfig(env, fstest.MapFS{})
			if err == nil {
				t.Fatalf("got no error, want one naming %v", tt.want)
			}
			if !errors.Is(err, errConfig) {
				t.Errorf("got %v, want an errConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestConfigRefusesItself: in a pod the sidecar's own resolv.conf says nameserver 127.0.0.1.
func TestConfigRefusesItself(t *testing.T) {
	_, err := loadConfig(map[string]string{}, podFS("nameserver 127.0.0.1\n"))
	if err == nil || !strings.Contains(err.Error(), "PODNS_UPSTREAMS") {
		t.Errorf("got %v, want an error telling to set PODNS_UPSTREAMS", err)
	}
	_, err = loadConfig(map[string]string{"PODNS_LISTEN": "0.0.0.0:53"}, podFS("nameserver 127.0.0.53\n"))
	if err == nil {
		t.Errorf("got no error for 127.0.0.53:53 with podns on 0.0.0.0:53, want one")
	}
	_, err = loadConfig(map[string]string{}, fstest.MapFS{})
	if err == nil || !strings.Contains(err.Error(), "PODNS_UPSTREAMS") {
		t.Errorf("without resolv.conf got %v, want an error telling to set PODNS_UPSTREAMS", err)
	}
}
