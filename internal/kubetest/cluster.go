// Package kubetest starts a Kubernetes control plane for tests: etcd and kube-apiserver, built by
// .ci/kubebins.sh and found by internal/testbin, on a loopback address (the machine's, or a network
// namespace's), with their data in the test's temporary directory. It writes a kubeconfig for programs
// under test (CoreDNS's kubernetes plugin) and offers a small client for the objects tests create.
// Every process is stopped by t.Cleanup.
//
// There is no controller manager and no scheduler: nothing creates a namespace's default
// ServiceAccount, an EndpointSlice for a Service, or runs a Pod. Tests create what they need.
package kubetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/podns/podns/internal/netns"
	"github.com/podns/podns/internal/proctest"
	"github.com/podns/podns/internal/testbin"
)

const (
	// startTimeout bounds etcd's and kube-apiserver's start. kube-apiserver is ready in about 2 s on
	// an idle 2-core machine; CI runs other suites beside it.
	startTimeout = 90 * time.Second
	// Context is the kubeconfig context (and cluster and user) Kubeconfig names.
	Context = "podns-test"
)

// Options says where the control plane runs. The zero value runs it on the machine's loopback with
// IPv4 Services in 10.96.0.0/12.
type Options struct {
	// Netns, when set, runs etcd and kube-apiserver inside that network namespace (`ip netns exec`,
	// root only), on its loopback: programs in the same namespace reach the API server at URL, and
	// the client dials into the namespace.
	Netns string
	// ServiceCIDR is kube-apiserver's --service-cluster-ip-range: one CIDR, or an IPv4 and an IPv6 one
	// separated by a comma for dual-stack Services. Empty means 10.96.0.0/12.
	ServiceCIDR string
}

// Cluster is a running control plane.
type Cluster struct {
	URL        string  // https://127.0.0.1:PORT, the API server (inside Options.Netns when set)
	Token      string  // bearer token of a system:masters user
	CAFile     string  // the CA certificate that signed the API server's serving certificate
	Kubeconfig string  // path of a kubeconfig for URL, Token and CAFile; its context is Context
	Client     *Client // never nil after Start
}

// Start runs etcd and kube-apiserver, waits until the API server is ready, and registers their stop
// with t.Cleanup. It skips t (fails it under PODNS_E2E_REQUIRE) when the binaries are not built.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	etcdBin := testbin.Need(t, testbin.Etcd)
	apiBin := testbin.Need(t, testbin.KubeAPIServer)
	if opts.ServiceCIDR == "" {
		opts.ServiceCIDR = "10.96.0.0/12"
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	procOpts := proctest.Options{Dir: dir, Netns: opts.Netns}

	ports := make([]int, 3) // etcd client, etcd peer, API server
	for i := range ports {
		p, err := netns.FreePort(opts.Netns)
		if err != nil {
			t.Fatalf("choosing a port: %v", err)
		}
		ports[i] = p
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	etcd := proctest.Start(t, "etcd", procOpts, etcdBin,
		"--name=default",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		// The data lives as long as the test: durability buys nothing and costs fsyncs.
		"--unsafe-no-fsync",
		"--log-level=warn")
	httpc := &http.Client{Timeout: 5 * time.Second, Transport: transport(opts.Netns, nil)}
	etcd.WaitReady(t, time.Until(deadline), func() error { return get(ctx, httpc, etcdURL+"/health", "") })

	token := randomHex(t, 16)
	tokens := filepath.Join(dir, "tokens.csv")
	writeFile(t, tokens, token+",admin,admin,\"system:masters\"\n")
	saKey := filepath.Join(dir, "sa.key")
	writeFile(t, saKey, rsaKeyPEM(t))
	certDir := filepath.Join(dir, "certs")
	api := proctest.Start(t, "kube-apiserver", procOpts, apiBin,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[2]),
		// A loopback advertise address is refused unless no endpoint reconciler runs.
		"--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
		"--cert-dir="+certDir,
		"--token-auth-file="+tokens, "--authorization-mode=AlwaysAllow",
		"--service-account-key-file="+saKey, "--service-account-signing-key-file="+saKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range="+opts.ServiceCIDR)

	c := &Cluster{
		URL:        "https://127.0.0.1:" + strconv.Itoa(ports[2]),
		Token:      token,
		CAFile:     filepath.Join(certDir, "apiserver.crt"),
		Kubeconfig: filepath.Join(dir, "kubeconfig"),
	}
	// The serving certificate appears in cert-dir once kube-apiserver has made it; until then (and
	// until /readyz says every post-start hook ran) the API server is not ready.
	var pool *x509.CertPool
	api.WaitReady(t, time.Until(deadline), func() error {
		if pool == nil {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return err
			}
			p := x509.NewCertPool()
			if !p.AppendCertsFromPEM(pem) {
				return fmt.Errorf("no certificate in %s yet", c.CAFile)
			}
			pool = p
		}
		httpc.Transport = transport(opts.Netns, pool)
		return get(ctx, httpc, c.URL+"/readyz", token)
	})
	writeFile(t, c.Kubeconfig, kubeconfig(c))
	c.Client = &Client{base: c.URL, token: token,
		http: &http.Client{Timeout: 30 * time.Second, Transport: transport(opts.Netns, pool)}}
	return c
}

// transport is an HTTP transport that dials inside the namespace (the machine's network when empty)
// and trusts pool (the system's roots when nil).
func transport(ns string, pool *x509.CertPool) *http.Transport {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	if ns != "" {
		tr.DialContext = netns.Dialer(ns)
	}
	return tr
}

// get succeeds when url answers 200.
func get(ctx context.Context, c *http.Client, url, token string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, bytes.TrimSpace(body.Bytes()))
	}
	return nil
}

func kubeconfig(c *Cluster) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s
  cluster:
    server: %[2]s
    certificate-authority: %[3]s
users:
- name: %[1]s
  user:
    token: %[4]s
contexts:
- name: %[1]s
  context:
    cluster: %[1]s
    user: %[1]s
current-context: %[1]s
`, Context, c.URL, c.CAFile, c.Token)
}

// rsaKeyPEM is a fresh key that signs and verifies service account tokens.
func rsaKeyPEM(t testing.TB) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generating the service account key: %v", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("encoding the service account key: %v", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeFile(t testing.TB, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}
