package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

const cliPod = `# a pod
apiVersion: v1
kind: Pod
metadata:
  name: web # kept
spec:
  containers:
    - name: app
      image: nginx
`

const cliHostNet = `apiVersion: v1
kind: Pod
metadata:
  name: node-agent
spec:
  hostNetwork: true
  containers:
    - name: agent
      image: agent
`

func runInjectCLI(t *testing.T, input string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runInject(args, strings.NewReader(input), &out, &errb)
	return code, out.String(), errb.String()
}

// TestInjectCLI: exit codes, warnings and output of podns inject, and that a second run over its own
// output changes nothing.
func TestInjectCLI(t *testing.T) {
	base := []string{"--image", "registry.test/podns:v9", "--upstreams", "10.96.0.10"}
	list, err := os.ReadFile("internal/inject/testdata/list.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		input      string
		args       []string
		wantCode   int
		wantOut    []string // substrings of stdout
		wantErr    string   // substring of stderr; "" means empty stderr
		unchanged  bool     // stdout must be the input byte for byte
		idempotent bool
	}{
		{"pod", cliPod, base, 0, []string{"# a pod", "name: web # kept", "- name: podns", "image: registry.test/podns:v9", "value: 10.96.0.10", "dnsPolicy: None"}, "", false, true},
		{"List", string(list), base, 0, []string{"kind: List", "- name: podns"}, "", false, true},
		{"resources", cliPod, append(base, "--memory-limit", "64Mi", "--cpu-request", "50m"), 0, []string{"memory: 64Mi", "cpu: 50m", "memory: 24Mi"}, "", false, true},
		{"resources as the API writes them", cliPod, append(base, "--cpu-request", "0.5", "--memory-limit", "1024Mi"), 0, []string{"cpu: 500m", "memory: 1Gi"}, "", false, true},
		{"cluster domain", cliPod, append(base, "--cluster-domain", "corp.local"), 0, []string{"value: corp.local"}, "", false, true},
		{"refused, not strict", cliPod + "---\n" + cliHostNet, base, 0, []string{"- name: podns", "hostNetwork: true"}, "not injected: document 1, Pod node-agent: refused: hostNetwork", false, true},
		{"refused, strict", cliPod + "---\n" + cliHostNet, append(base, "--strict"), 1, nil, "--strict: 1 pod(s) refused", true, false},
		{"strict, nothing refused", cliPod, append(base, "--strict"), 0, []string{"- name: podns"}, "", false, true},
		{"no image", cliPod, []string{"--upstreams", "10.96.0.10"}, 2, nil, "no image", false, false},
		{"no upstreams", cliPod, []string{"--image", "p"}, 2, nil, "no upstream", false, false},
		{"loopback upstream", cliPod, []string{"--image", "p", "--upstreams", "127.0.0.1"}, 2, nil, "loopback", false, false},
		{"bad quantity", cliPod, append(base, "--memory-limit", "lots"), 2, nil, "--memory-limit", false, false},
		{"request above limit", cliPod, append(base, "--memory-request", "1Gi"), 2, nil, "above its limit", false, false},
		{"unknown flag", cliPod, append(base, "--frobnicate"), 2, nil, "frobnicate", false, false},
		{"file argument", cliPod, append(base, "pod.yaml"), 2, nil, "read from stdin", false, false},
		{"not YAML", "kind: [", base, 1, nil, "document 0", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runInjectCLI(t, tt.input, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit: got %d, want %d (stderr %q)", code, tt.wantCode, errs)
			}
			if (tt.wantErr == "") != (errs == "") || !strings.Contains(errs, tt.wantErr) {
				t.Errorf("stderr: got %q, want %q", errs, tt.wantErr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if tt.unchanged && out != tt.input {
				t.Errorf("stdout: got\n%s\nwant the input unchanged", out)
			}
			if tt.wantCode != 0 && !tt.unchanged && out != "" {
				t.Errorf("stdout: got %q, want nothing on an error", out)
			}
			if tt.idempotent {
				code2, out2, _ := runInjectCLI(t, out, tt.args...)
				if code2 != 0 || out2 != out {
					t.Errorf("second run: got exit %d and\n%s\nwant 0 and the first output", code2, out2)
				}
			}
		})
	}
}

// TestWebhookConfig: the PODNS_WEBHOOK_* variables and their errors.
func TestWebhookConfig(t *testing.T) {
	base := map[string]string{"PODNS_WEBHOOK_CERT": "/tls/tls.crt", "PODNS_WEBHOOK_KEY": "/tls/tls.key", "PODNS_WEBHOOK_IMAGE": "p:1"}
	c, err := loadWebhookConfig(base)
	if err != nil {
		t.Fatalf("loadWebhookConfig: %v", err)
	}
	if c.Addr != ":8443" || c.DNSService != "kube-dns" || len(c.Upstreams) != 0 {
		t.Errorf("defaults: got addr %q service %q upstreams %v, want :8443 kube-dns none", c.Addr, c.DNSService, c.Upstreams)
	}
	opts, err := c.options()
	if err != nil || opts.Resources != nil {
		t.Errorf("options: got %+v, %v, want the example's resources (nil)", opts, err)
	}
	withRes := map[string]string{"PODNS_WEBHOOK_MEMORY_LIMIT": "64Mi", "PODNS_UPSTREAMS": "10.0.0.10, 10.0.0.11"}
	for k, v := range base {
		withRes[k] = v
	}
	c, _ = loadWebhookConfig(withRes)
	opts, err = c.options()
	if err != nil || opts.Resources == nil || opts.Resources.Limits["memory"] != "64Mi" || opts.Resources.Requests["memory"] != "24Mi" {
		t.Errorf("resources: got %+v, %v, want limit 64Mi over the example's request 24Mi", opts.Resources, err)
	}
	if got := strings.Join(opts.Upstreams, ","); got != "10.0.0.10,10.0.0.11" {
		t.Errorf("upstreams: got %v, want 10.0.0.10,10.0.0.11", got)
	}

	tests := []struct {
		name, key, value, want string
	}{
		{"no cert", "PODNS_WEBHOOK_CERT", "", "PODNS_WEBHOOK_CERT"},
		{"no image", "PODNS_WEBHOOK_IMAGE", "", "PODNS_WEBHOOK_IMAGE"},
		{"bad addr", "PODNS_WEBHOOK_ADDR", "8443", "PODNS_WEBHOOK_ADDR"},
		{"bad log level", "PODNS_LOG_LEVEL", "loud", "PODNS_LOG_LEVEL"},
		{"bad quantity", "PODNS_WEBHOOK_CPU_LIMIT", "fast", "PODNS_WEBHOOK_CPU_LIMIT"},
		{"loopback upstream", "PODNS_UPSTREAMS", "127.0.0.1", "loopback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{tt.key: tt.value}
			for k, v := range base {
				if k != tt.key {
					env[k] = v
				}
			}
			var stderr bytes.Buffer
			if code := runWebhook(env, nil, &stderr); code != 2 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("got exit %d and %q, want 2 and a message naming %s", code, stderr.String(), tt.want)
			}
		})
	}
}
