package webhook

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/podns/podns/internal/inject"
	"github.com/podns/podns/internal/kubetest"
	"github.com/podns/podns/internal/timetest"
)

// apiWait bounds how long the API server may take to start calling a newly created webhook
// configuration (it loads configurations through an informer, within a second or so when idle).
const apiWait = 30 * time.Second

// restrictedPod is a pod whose only container meets the restricted Pod Security Standard.
func restrictedPod(ns, name string, annotations map[string]string) *corev1.Pod {
	yes, no := true, false
	uid := int64(1000)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "registry.test/app:1",
			SecurityContext: &corev1.SecurityContext{
				RunAsNonRoot: &yes, RunAsUser: &uid, AllowPrivilegeEscalation: &no,
				Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
		}}},
	}
}

func hasPodns(p *corev1.Pod) bool {
	return len(p.Spec.InitContainers) > 0 && p.Spec.InitContainers[0].Name == inject.ContainerName
}

// checkStoredPodns: the pod the API server stored runs podns as a native sidecar and resolves
// through it.
func checkStoredPodns(t *testing.T, p *corev1.Pod, image string) {
	t.Helper()
	if !hasPodns(p) {
		t.Fatalf("pod %s/%s: got init containers %v, want podns first", p.Namespace, p.Name, p.Spec.InitContainers)
	}
	c := p.Spec.InitContainers[0]
	if c.Image != image || c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways || c.StartupProbe == nil {
		t.Errorf("podns container: got image %q restartPolicy %v startupProbe %v, want %s, Always and a probe", c.Image, c.RestartPolicy, c.StartupProbe, image)
	}
	if p.Spec.DNSPolicy != corev1.DNSNone || p.Spec.DNSConfig == nil || !slices.Equal(p.Spec.DNSConfig.Nameservers, []string{"127.0.0.1"}) {
		t.Errorf("dns: got %v %+v, want None with 127.0.0.1", p.Spec.DNSPolicy, p.Spec.DNSConfig)
	}
	ups := ""
	for _, e := range c.Env {
		if e.Name == "PODNS_UPSTREAMS" {
			ups = e.Value
		}
	}
	if ups != "10.96.0.10" {
		t.Errorf("PODNS_UPSTREAMS: got %q, want 10.96.0.10, the kube-dns Service's ClusterIP", ups)
	}
}

// TestAPIServer runs the webhook and podns inject against a real kube-apiserver (internal/kubetest):
// the example's MutatingWebhookConfiguration, pointed at the webhook on loopback with a test CA,
// decides which pods get podns; the stored pods are what the API server made of the patches; the
// output of podns inject is accepted with strict field validation under PodSecurity restricted.
func TestAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	c := kubetest.Start(t, kubetest.Options{})
	ctx := t.Context()
	kc := c.Client
	dns := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}, {Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP}}},
	}
	if err := kc.Create(ctx, dns); err != nil {
		t.Fatalf("creating kube-dns: %v", err)
	}
	const restricted = "pod-security.kubernetes.io/enforce"
	for name, labels := range map[string]map[string]string{
		"injected": {inject.Label: inject.LabelEnabled, restricted: "restricted"},
		"plain":    {restricted: "restricted"},
	} {
		if err := kc.CreateNamespace(ctx, name, labels); err != nil {
			t.Fatalf("namespace %s: %v", name, err)
		}
	}

	t.Run("webhook", func(t *testing.T) { testWebhookAgainstAPIServer(t, c) })
	t.Run("inject", func(t *testing.T) { testInjectAgainstAPIServer(t, c) })
}

func testWebhookAgainstAPIServer(t *testing.T, c *kubetest.Cluster) {
	ctx := t.Context()
	kc := c.Client
	const image = "registry.test/podns:v9"
	// The webhook finds the upstream as in a cluster: one GET of the kube-dns Service.
	u, err := url.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	api := APIServer{Host: u.Hostname(), Port: u.Port(), CA: ca, Token: func() ([]byte, error) { return []byte(c.Token), nil }}
	cert := newTestCert(t, 1)
	files := &memFiles{}
	files.set(cert)
	srv, err := New(Config{
		Options:  inject.Options{Image: image},
		CertFile: "tls.crt", KeyFile: "tls.key", ReadFile: files.read,
		Upstreams:     func(ctx context.Context) ([]string, error) { return api.ServiceIPs(ctx, "kube-system", "kube-dns") },
		RetryInterval: 100 * time.Millisecond,
	}, zerolog.Nop())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	stopped := false
	stopWebhook := func() {
		if !stopped {
			stopped = true
			stop()
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
		}
	}
	defer stopWebhook()
	timetest.Poll(t, apiWait, func() error {
		if !srv.Ready() {
			return errors.New("the webhook did not find kube-dns's ClusterIP")
		}
		return nil
	})

	// The example's configuration, with the webhook's URL and CA instead of the Service and
	// cert-manager's injection.
	b, err := os.ReadFile("../../examples/webhook/50-mutatingwebhookconfiguration.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var mwc admissionregistrationv1.MutatingWebhookConfiguration
	if err := sigsyaml.UnmarshalStrict(b, &mwc); err != nil {
		t.Fatal(err)
	}
	mwc.Annotations = nil
	hook := "https://" + ln.Addr().String() + "/mutate"
	for i := range mwc.Webhooks {
		mwc.Webhooks[i].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &hook, CABundle: cert.certPEM}
	}
	if err := kc.Create(ctx, &mwc); err != nil {
		t.Fatalf("creating the MutatingWebhookConfiguration: %v", err)
	}
	// Wait until the API server calls it.
	timetest.Poll(t, apiWait, func() error {
		p := restrictedPod("injected", "probe", nil)
		if err := kc.DryRunCreate(ctx, p); err != nil {
			t.Fatalf("dry-run pod: %v", err)
		}
		if !hasPodns(p) {
			return errors.New("the API server does not call the webhook")
		}
		return nil
	})

	tests := []struct {
		name        string
		ns          string
		annotations map[string]string
		want        bool
	}{
		{"labelled namespace", "injected", nil, true},
		{"labelled namespace, opted out", "injected", map[string]string{inject.Annotation: "false"}, false},
		{"other namespace", "plain", nil, false},
		{"other namespace, opted in", "plain", map[string]string{inject.Annotation: "true"}, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := restrictedPod(tt.ns, "pod-"+string(rune('a'+i)), tt.annotations)
			if err := kc.Create(ctx, p); err != nil {
				t.Fatalf("creating the pod: %v", err)
			}
			stored := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}
			if err := kc.Get(ctx, stored); err != nil {
				t.Fatal(err)
			}
			if !tt.want {
				if hasPodns(stored) || stored.Spec.DNSPolicy != corev1.DNSClusterFirst {
					t.Errorf("got init containers %v dnsPolicy %v, want the pod unchanged", stored.Spec.InitContainers, stored.Spec.DNSPolicy)
				}
				return
			}
			checkStoredPodns(t, stored, image)
		})
	}
	// The opted-out pod never reached the server: the matchConditions kept it away.
	srv.metrics.mu.Lock()
	optedOut, injected := srv.metrics.admissions[resultOptedOut], srv.metrics.admissions[resultInjected]
	srv.metrics.mu.Unlock()
	if optedOut != 0 || injected < 3 {
		t.Errorf("webhook admissions: got %d opted out, %d injected, want 0 (filtered by matchConditions) and at least 3", optedOut, injected)
	}

	t.Run("webhook stopped", func(t *testing.T) {
		stopWebhook()
		p := restrictedPod("injected", "while-down", nil)
		if err := kc.Create(ctx, p); err != nil {
			t.Fatalf("creating a pod with the webhook down: got %v, want it created (failurePolicy Ignore)", err)
		}
		if hasPodns(p) {
			t.Errorf("got podns in a pod created while the webhook was down")
		}
	})
}

// testInjectAgainstAPIServer: every workload kind of podns inject's output is accepted with
// dryRun=All and strict field validation, and so is a Pod of each one's template in a namespace that
// enforces PodSecurity restricted (enforcement applies to Pods; for workloads it only warns).
func testInjectAgainstAPIServer(t *testing.T, c *kubetest.Cluster) {
	ctx := t.Context()
	kc := c.Client
	in, err := inject.New(inject.Options{Image: "registry.test/podns:v9", Upstreams: []string{"10.96.0.10"}})
	if err != nil {
		t.Fatal(err)
	}
	input, err := os.ReadFile("testdata/restricted.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, reports, err := in.Manifests(input)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 7 {
		t.Fatalf("reports: got %v, want 7 workloads", reports)
	}
	// The namespace does enforce: a pod without a seccomp profile is refused.
	bad := restrictedPod("plain", "unconfined", nil)
	bad.Spec.Containers[0].SecurityContext.SeccompProfile = nil
	if err := kc.DryRunCreate(ctx, bad); kubetest.Reason(err) != metav1.StatusReasonForbidden {
		t.Fatalf("pod without seccompProfile in the restricted namespace: got %v, want Forbidden", err)
	}
	docs := strings.Split(string(out), "\n---\n")
	if len(docs) != 7 {
		t.Fatalf("documents: got %d, want 7", len(docs))
	}
	for _, doc := range docs {
		var m map[string]any
		if err := sigsyaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{Object: m}
		obj.SetNamespace("plain")
		t.Run(obj.GetKind(), func(t *testing.T) {
			if err := kc.DryRunCreate(ctx, obj); err != nil {
				t.Fatalf("dry-run create: %v", err)
			}
			tmplPath := []string{"spec", "template"}
			switch obj.GetKind() {
			case "Pod":
				return // the Pod itself was enforced
			case "CronJob":
				tmplPath = []string{"spec", "jobTemplate", "spec", "template"}
			}
			tmpl, found, err := unstructured.NestedMap(m, tmplPath...)
			if err != nil || !found {
				t.Fatalf("no pod template at %v: %v", tmplPath, err)
			}
			pod := &unstructured.Unstructured{Object: tmpl}
			pod.SetAPIVersion("v1")
			pod.SetKind("Pod")
			pod.SetNamespace("plain")
			pod.SetName(strings.ToLower(obj.GetKind()) + "-pod")
			if err := kc.DryRunCreate(ctx, pod); err != nil {
				t.Fatalf("dry-run create of its pod: %v", err)
			}
		})
	}
}
