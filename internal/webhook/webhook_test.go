package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podns/podns/internal/inject"
	"github.com/podns/podns/internal/timetest"
)

var testOpts = inject.Options{Image: "registry.test/podns:v9", Upstreams: []string{"10.96.0.10"}}

// testCert is a self-signed serving certificate for 127.0.0.1, as PEM.
type testCert struct {
	certPEM, keyPEM []byte
	serial          *big.Int
	pool            *x509.CertPool
}

func newTestCert(t *testing.T, serial int64) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "podns-webhook.test"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return testCert{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		serial:  tmpl.SerialNumber, pool: pool,
	}
}

// memFiles is a filesystem of PEM files that a test rewrites.
type memFiles struct {
	mu    sync.Mutex
	files map[string][]byte
}

func (m *memFiles) set(c testCert) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files = map[string][]byte{"tls.crt": c.certPEM, "tls.key": c.keyPEM}
}

func (m *memFiles) read(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[name]
	if !ok {
		return nil, fmt.Errorf("open %s: no such file", name)
	}
	return b, nil
}

type testServer struct {
	srv    *Server
	url    string
	client *http.Client
	files  *memFiles
	cert   testCert
}

// startTestServer runs the webhook as main does (Serve: its TLS configuration and certificate
// reloader) on a loopback port, until the test ends.
func startTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	cert := newTestCert(t, 1)
	files := &memFiles{}
	files.set(cert)
	cfg.CertFile, cfg.KeyFile, cfg.ReadFile = "tls.crt", "tls.key", files.read
	srv, err := New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: got %v, want nil", err)
		}
	})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.pool}}}
	t.Cleanup(client.CloseIdleConnections)
	return &testServer{srv: srv, url: "https://" + ln.Addr().String(), client: client, files: files, cert: cert}
}

func review(t *testing.T, op admissionv1.Operation, resource string, obj any) []byte {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	rev := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       "705ab4f5-6393-11e8-b7cc-42010a800002",
			Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource:  metav1.GroupVersionResource{Version: "v1", Resource: resource},
			Namespace: "apps",
			Operation: op,
			Object:    runtime.RawExtension{Raw: raw},
		},
	}
	b, err := json.Marshal(rev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (ts *testServer) post(t *testing.T, contentType string, body []byte) (int, []byte) {
	t.Helper()
	resp, err := ts.client.Post(ts.url+"/mutate", contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST /mutate: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (ts *testServer) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := ts.client.Get(ts.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (ts *testServer) mutate(t *testing.T, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	code, b := ts.post(t, "application/json", body)
	if code != http.StatusOK {
		t.Fatalf("POST /mutate: got %d %s, want 200", code, b)
	}
	var rev admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &rev); err != nil || rev.Response == nil {
		t.Fatalf("decoding the response %s: %v", b, err)
	}
	if rev.APIVersion != "admission.k8s.io/v1" || rev.Kind != "AdmissionReview" {
		t.Errorf("response TypeMeta: got %v, want admission.k8s.io/v1 AdmissionReview", rev.TypeMeta)
	}
	if rev.Response.UID != "705ab4f5-6393-11e8-b7cc-42010a800002" {
		t.Errorf("response uid: got %q, want the request's", rev.Response.UID)
	}
	if !rev.Response.Allowed {
		t.Errorf("allowed: got false, want true: the webhook never fails a pod")
	}
	return rev.Response
}

func pod(mutate func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: "apps"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}},
	}
	if mutate != nil {
		mutate(&p)
	}
	return p
}

// TestMutate: every well-formed request is allowed; a Pod CREATE gets the patch that the injector
// computes, a pod it cannot serve a warning and a metric.
func TestMutate(t *testing.T) {
	ts := startTestServer(t, Config{Options: testOpts})
	in, err := inject.New(testOpts)
	if err != nil {
		t.Fatal(err)
	}
	injected := pod(nil)
	if err := func() error {
		raw, _ := json.Marshal(injected)
		var p struct{ Spec inject.PodSpec }
		if err := json.Unmarshal(raw, &p); err != nil {
			return err
		}
		ops, err := in.Patch(&p.Spec)
		if err != nil {
			return err
		}
		out, err := inject.ApplyJSON(raw, inject.WithPrefix(ops, "/spec"))
		if err != nil {
			return err
		}
		injected = corev1.Pod{}
		return json.Unmarshal(out, &injected)
	}(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		body      []byte
		wantPatch bool
		wantWarn  string // substring of the one warning; "" for none
		wantStat  string // a line of /metrics afterwards
	}{
		{"pod", review(t, admissionv1.Create, "pods", pod(nil)), true, "", `podns_webhook_admissions_total{result="injected"} 1`},
		{"pod with init containers", review(t, admissionv1.Create, "pods", pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "m"}}
		})), true, "", `podns_webhook_admissions_total{result="injected"} 2`},
		{"opted out", review(t, admissionv1.Create, "pods", pod(func(p *corev1.Pod) {
			p.Annotations = map[string]string{inject.Annotation: "false"}
		})), false, "", `podns_webhook_admissions_total{result="opted_out"} 1`},
		{"hostNetwork", review(t, admissionv1.Create, "pods", pod(func(p *corev1.Pod) { p.Spec.HostNetwork = true })),
			false, "hostNetwork", `podns_webhook_not_injected_total{reason="host-network"} 1`},
		{"own nameservers", review(t, admissionv1.Create, "pods", pod(func(p *corev1.Pod) {
			p.Spec.DNSPolicy, p.Spec.DNSConfig = corev1.DNSNone, &corev1.PodDNSConfig{Nameservers: []string{"1.1.1.1"}}
		})), false, "nameservers", `podns_webhook_not_injected_total{reason="own-nameservers"} 1`},
		{"already injected", review(t, admissionv1.Create, "pods", injected), false, "", `podns_webhook_admissions_total{result="already"} 1`},
		{"update", review(t, admissionv1.Update, "pods", pod(nil)), false, "", `podns_webhook_admissions_total{result="ignored"} 1`},
		{"not a pod", review(t, admissionv1.Create, "deployments", pod(nil)), false, "", `podns_webhook_admissions_total{result="ignored"} 2`},
		{"unreadable pod", review(t, admissionv1.Create, "pods", map[string]any{"spec": map[string]any{"containers": 7}}),
			false, "could not be read", `podns_webhook_not_injected_total{reason="undecodable"} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.mutate(t, tt.body)
			if got := resp.Patch != nil; got != tt.wantPatch {
				t.Fatalf("patch: got %s, want a patch %v", resp.Patch, tt.wantPatch)
			}
			switch {
			case tt.wantWarn == "" && len(resp.Warnings) > 0:
				t.Errorf("warnings: got %q, want none", resp.Warnings)
			case tt.wantWarn != "" && (len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tt.wantWarn)):
				t.Errorf("warnings: got %q, want one containing %q", resp.Warnings, tt.wantWarn)
			}
			if tt.wantPatch {
				checkPatch(t, in, tt.body, resp)
			}
			if _, m := ts.get(t, "/metrics"); !strings.Contains(m, tt.wantStat+"\n") {
				t.Errorf("metrics: got\n%s\nwant a line %q", m, tt.wantStat)
			}
		})
	}
}

// checkPatch applies the response's patch to the request's pod: podns comes first among the init
// containers and the pod resolves through it; the rest of the pod is as it was.
func checkPatch(t *testing.T, in *inject.Injector, body []byte, resp *admissionv1.AdmissionResponse) {
	t.Helper()
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Errorf("patchType: got %v, want JSONPatch", resp.PatchType)
	}
	var ops []inject.Op
	if err := json.Unmarshal(resp.Patch, &ops); err != nil {
		t.Fatalf("decoding the patch: %v", err)
	}
	rev, err := DecodeReview(body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := inject.ApplyJSON(rev.Request.Object, ops)
	if err != nil {
		t.Fatalf("applying the patch %s: %v", resp.Patch, err)
	}
	var before, after corev1.Pod
	json.Unmarshal(rev.Request.Object, &before)
	if err := json.Unmarshal(out, &after); err != nil {
		t.Fatal(err)
	}
	var podns corev1.Container
	if err := json.Unmarshal(in.Container(), &podns); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(after.Spec.InitContainers[0], podns) {
		t.Errorf("init container 0: got %+v, want podns", after.Spec.InitContainers[0])
	}
	if len(after.Spec.InitContainers) != len(before.Spec.InitContainers)+1 {
		t.Errorf("init containers: got %d, want %d", len(after.Spec.InitContainers), len(before.Spec.InitContainers)+1)
	}
	if after.Spec.DNSPolicy != corev1.DNSNone || after.Spec.DNSConfig.Nameservers[0] != "127.0.0.1" {
		t.Errorf("dns: got %v %v, want None 127.0.0.1", after.Spec.DNSPolicy, after.Spec.DNSConfig)
	}
	if !reflect.DeepEqual(after.Spec.Containers, before.Spec.Containers) || !reflect.DeepEqual(after.ObjectMeta, before.ObjectMeta) {
		t.Errorf("containers or metadata changed: got %+v, want %+v", after, before)
	}
}

// TestMalformed: what is not an AdmissionReview v1 gets an HTTP error and a count, never a panic or
// a response the API server could take for an answer.
func TestMalformed(t *testing.T) {
	ts := startTestServer(t, Config{Options: testOpts})
	good := review(t, admissionv1.Create, "pods", pod(nil))
	tests := []struct {
		name        string
		contentType string
		body        []byte
		want        int
	}{
		{"empty", "application/json", nil, http.StatusBadRequest},
		{"not JSON", "application/json", []byte("<xml/>"), http.StatusBadRequest},
		{"empty object", "application/json", []byte("{}"), http.StatusBadRequest},
		{"v1beta1", "application/json", bytes.Replace(good, []byte("admission.k8s.io/v1"), []byte("admission.k8s.io/v1beta1"), 1), http.StatusBadRequest},
		{"no request", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`), http.StatusBadRequest},
		{"no uid", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"operation":"CREATE"}}`), http.StatusBadRequest},
		{"trailing data", "application/json", append(append([]byte{}, good...), []byte("{}")...), http.StatusBadRequest},
		{"wrong type of field", "application/json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":7}}`), http.StatusBadRequest},
		{"content type", "text/plain", good, http.StatusUnsupportedMediaType},
		{"too large", "application/json", bytes.Repeat([]byte(" "), maxBody+1), http.StatusRequestEntityTooLarge},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := ts.post(t, tt.contentType, tt.body)
			if code != tt.want {
				t.Errorf("got %d %s, want %d", code, body, tt.want)
			}
			want := fmt.Sprintf("podns_webhook_bad_requests_total %d\n", i+1)
			if _, m := ts.get(t, "/metrics"); !strings.Contains(m, want) {
				t.Errorf("metrics: got\n%s\nwant %q", m, want)
			}
		})
	}
	if code, _ := ts.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after the bad requests: got %d, want 200", code)
	}
}

// TestDiscovery: without configured upstreams the webhook asks for them until it gets them; until
// then /readyz fails and pods are allowed unchanged with a warning.
func TestDiscovery(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	opts := testOpts
	opts.Upstreams = nil
	cert := newTestCert(t, 1)
	files := &memFiles{}
	files.set(cert)
	srv, err := New(Config{
		Options: opts, CertFile: "tls.crt", KeyFile: "tls.key", ReadFile: files.read,
		RetryInterval: 5 * time.Millisecond,
		Upstreams: func(ctx context.Context) ([]string, error) {
			calls.Add(1)
			select {
			case <-release:
				return []string{"10.96.0.10"}, nil
			default:
				return nil, errors.New("API server not reachable")
			}
		},
	}, zerolog.Nop())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	ts := &testServer{url: "https://" + ln.Addr().String(), client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.pool}}}}

	timetest.WaitFor(t, func() bool { return calls.Load() >= 2 }) // the lookup is retried
	if code, _ := ts.get(t, "/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz before discovery: got %d, want 503", code)
	}
	resp := ts.mutate(t, review(t, admissionv1.Create, "pods", pod(nil)))
	if resp.Patch != nil || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "cluster DNS address") {
		t.Errorf("before discovery: got patch %s warnings %q, want none and a warning", resp.Patch, resp.Warnings)
	}
	close(release)
	timetest.Poll(t, timetest.Timeout, func() error {
		if code, _ := ts.get(t, "/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz got %d after the lookup succeeded, want 200", code)
		}
		return nil
	})
	if resp := ts.mutate(t, review(t, admissionv1.Create, "pods", pod(nil))); resp.Patch == nil {
		t.Errorf("after discovery: got no patch, want one")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: got %v, want nil", err)
	}
}

// TestCertReload: a new certificate in the files is served from the next handshake; an unreadable
// pair keeps the last good one.
func TestCertReload(t *testing.T) {
	ts := startTestServer(t, Config{Options: testOpts})
	serial := func(pool *x509.CertPool) (*big.Int, error) {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(ts.url, "https://"), &tls.Config{RootCAs: pool})
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
	}
	if got, err := serial(ts.cert.pool); err != nil || got.Int64() != 1 {
		t.Fatalf("first certificate: got %v, %v, want serial 1", got, err)
	}
	second := newTestCert(t, 2)
	ts.files.set(second)
	if got, err := serial(second.pool); err != nil || got.Int64() != 2 {
		t.Errorf("after rotation: got %v, %v, want serial 2", got, err)
	}
	ts.files.set(testCert{certPEM: second.certPEM, keyPEM: []byte("garbage")})
	if got, err := serial(second.pool); err != nil || got.Int64() != 2 {
		t.Errorf("with a broken key: got %v, %v, want serial 2 still", got, err)
	}
	ts.client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: second.pool}}}
	_, m := ts.get(t, "/metrics")
	for _, want := range []string{"podns_webhook_cert_reloads_total 1\n", "podns_webhook_cert_errors_total "} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics: got\n%s\nwant %q", m, want)
		}
	}
	if strings.Contains(m, "podns_webhook_cert_errors_total 0\n") {
		t.Errorf("metrics: got no cert error counted, want at least one")
	}
}

func TestNewErrors(t *testing.T) {
	cert := newTestCert(t, 1)
	files := &memFiles{}
	files.set(cert)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no cert", Config{Options: testOpts, KeyFile: "tls.key"}, "certificate and a key"},
		{"missing file", Config{Options: testOpts, CertFile: "nope", KeyFile: "tls.key"}, "no such file"},
		{"cert as key", Config{Options: testOpts, CertFile: "tls.crt", KeyFile: "tls.crt"}, "parsing"},
		{"no upstream, no lookup", Config{Options: inject.Options{Image: "p"}, CertFile: "tls.crt", KeyFile: "tls.key"}, "no upstream"},
		{"no image", Config{Options: inject.Options{Upstreams: []string{"10.0.0.1"}}, CertFile: "tls.crt", KeyFile: "tls.key"}, "no image"},
		{"no image, with a lookup", Config{Upstreams: func(context.Context) ([]string, error) { return nil, nil }, CertFile: "tls.crt", KeyFile: "tls.key"}, "no image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.ReadFile = files.read
			if _, err := New(tt.cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
