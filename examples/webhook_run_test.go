package examples_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podns/podns/internal/timetest"
)

// TestWebhookProbesAgainstPodns runs the real binary as the webhook Deployment's container runs it
// (its args and environment; the certificate files, the address and the upstream moved to the test's
// own), makes the container's probes as the kubelet would (HTTPS without verifying the certificate),
// and sends one AdmissionReview: the pod comes back with a JSON patch. Once the process is gone the
// probes fail, so a probe that passes against anything is caught too.
func TestWebhookProbesAgainstPodns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the podns binary; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("needs the go command to build podns")
	}
	s := loadWebhookSet(t)
	c := &s.deploy.Spec.Template.Spec.Containers[0]
	dir := t.TempDir()
	bin := filepath.Join(dir, "podns")
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building podns: %v\n%s", err, out)
	}
	certFile, keyFile := writeTestCert(t, dir)
	port := freePort(t)
	env := containerEnv(t, c, map[string]string{
		"PODNS_WEBHOOK_ADDR": net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		"PODNS_WEBHOOK_CERT": certFile,
		"PODNS_WEBHOOK_KEY":  keyFile,
		"PODNS_UPSTREAMS":    "10.96.0.10", // injected into pods only: the webhook sends no DNS
	})
	cmd := exec.Command(bin, c.Args...)
	cmd.Env = env
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}
	defer stop()
	defer func() {
		if t.Failed() {
			t.Logf("podns webhook output:\n%s", logs.String())
		}
	}()

	// The kubelet does not verify the certificate of an HTTPS probe.
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	probe := func(p *corev1.Probe) error {
		// TestWebhookExamples checks that the port is PODNS_WEBHOOK_ADDR's; the test's address replaces it.
		if resolvePort(c, p.HTTPGet.Port) == 0 {
			return fmt.Errorf("port %s is not a port of the container", p.HTTPGet.Port.String())
		}
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d%s", port, p.HTTPGet.Path))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: status %d", p.HTTPGet.Path, resp.StatusCode)
		}
		return nil
	}
	timetest.Poll(t, probeWait, func() error {
		if err := probe(c.ReadinessProbe); err != nil {
			return fmt.Errorf("readinessProbe: %w", err)
		}
		return nil
	})
	if err := probe(c.LivenessProbe); err != nil {
		t.Errorf("livenessProbe while the webhook serves: got %v, want success", err)
	}

	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","resource":{"version":"v1","resource":"pods"},"namespace":"apps","operation":"CREATE","object":{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-"},"spec":{"containers":[{"name":"app","image":"nginx"}]}}}}`
	resp, err := client.Post(fmt.Sprintf("https://127.0.0.1:%d/mutate", port), "application/json", bytes.NewBufferString(review))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var out struct {
		Response struct {
			UID       string `json:"uid"`
			Allowed   bool   `json:"allowed"`
			PatchType string `json:"patchType"`
			Patch     []byte `json:"patch"`
		} `json:"response"`
	}
	if err := json.Unmarshal(body, &out); err != nil || !out.Response.Allowed || out.Response.UID != "u1" || out.Response.PatchType != "JSONPatch" {
		t.Errorf("/mutate: got %d %s, want allowed with a JSONPatch for uid u1", resp.StatusCode, body)
	}
	if !bytes.Contains(out.Response.Patch, []byte(`"image":"`+c.Image+`"`)) {
		t.Errorf("patch %s: want the image %s (PODNS_WEBHOOK_IMAGE)", out.Response.Patch, c.Image)
	}

	stop()
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if err := probe(p); err == nil {
			t.Errorf("%s probe after the webhook stopped: got success, want failure", name)
		}
	}
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key as PEM files in dir.
func writeTestCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
