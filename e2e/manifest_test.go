//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// e2eManifest is the pod spec users copy; the podns pod of the suite gets the resolv.conf the kubelet
// writes for it, so the suite measures the configuration users run.
const e2eManifest = "../examples/native-sidecar.yaml"

// errNoDNSConfig marks a manifest whose pod does not set dnsPolicy None with a dnsConfig.
var errNoDNSConfig = errors.New("pod spec without dnsPolicy None and dnsConfig")

// e2eDNSConfig is the part of a workload manifest the kubelet turns into the pod's resolv.conf.
type e2eDNSConfig struct {
	Spec struct {
		Template struct {
			Spec struct {
				DNSPolicy string `json:"dnsPolicy"`
				DNSConfig *struct {
					Nameservers []string `json:"nameservers"`
					Searches    []string `json:"searches"`
					Options     []struct {
						Name  string  `json:"name"`
						Value *string `json:"value"`
					} `json:"options"`
				} `json:"dnsConfig"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// kubeletResolvConf renders the resolv.conf the kubelet writes for a workload manifest with
// dnsPolicy None: its nameservers, its search list if any, and its options as name or name:value.
func kubeletResolvConf(manifest []byte) (string, error) {
	var doc e2eDNSConfig
	if err := yaml.Unmarshal(manifest, &doc); err != nil {
		return "", fmt.Errorf("decoding the manifest: %w", err)
	}
	pod := doc.Spec.Template.Spec
	if pod.DNSPolicy != "None" || pod.DNSConfig == nil || len(pod.DNSConfig.Nameservers) == 0 {
		return "", errNoDNSConfig
	}
	var b strings.Builder
	for _, ns := range pod.DNSConfig.Nameservers {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(pod.DNSConfig.Searches) > 0 {
		b.WriteString("search " + strings.Join(pod.DNSConfig.Searches, " ") + "\n")
	}
	if len(pod.DNSConfig.Options) > 0 {
		opts := make([]string, len(pod.DNSConfig.Options))
		for i, o := range pod.DNSConfig.Options {
			opts[i] = o.Name
			if o.Value != nil {
				opts[i] += ":" + *o.Value
			}
		}
		b.WriteString("options " + strings.Join(opts, " ") + "\n")
	}
	return b.String(), nil
}

// podnsResolvConf is the podns pod's resolv.conf: the kubelet's rendering of e2eManifest.
func podnsResolvConf(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(e2eManifest)
	if err != nil {
		t.Fatalf("reading %s: %v", e2eManifest, err)
	}
	text, err := kubeletResolvConf(data)
	if err != nil {
		t.Fatalf("%s: %v", e2eManifest, err)
	}
	return text
}

func TestKubeletResolvConf(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		want     string
		wantErr  error
	}{
		{
			name: "nameserver and options",
			manifest: `
spec:
  template:
    spec:
      dnsPolicy: None
      dnsConfig:
        nameservers: [127.0.0.1]
        options:
          - name: edns0
          - name: timeout
            value: "2"
`,
			want: "nameserver 127.0.0.1\noptions edns0 timeout:2\n",
		},
		{
			name: "search list",
			manifest: `
spec:
  template:
    spec:
      dnsPolicy: None
      dnsConfig:
        nameservers: [127.0.0.1, "::1"]
        searches: [apps.svc.cluster.local]
`,
			want: "nameserver 127.0.0.1\nnameserver ::1\nsearch apps.svc.cluster.local\n",
		},
		{
			name:     "ClusterFirst",
			manifest: "spec: {template: {spec: {dnsPolicy: ClusterFirst}}}",
			wantErr:  errNoDNSConfig,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := kubeletResolvConf([]byte(tt.manifest))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error: got %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run(e2eManifest, func(t *testing.T) {
		got := podnsResolvConf(t)
		if !strings.HasPrefix(got, "nameserver 127.0.0.1\n") {
			t.Errorf("got %q, want it to start with nameserver 127.0.0.1", got)
		}
	})
}
