package examples_test

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// webhookSet is the webhook's manifests, one of each kind.
type webhookSet struct {
	ns      *corev1.Namespace
	sa      *corev1.ServiceAccount
	role    *rbacv1.Role
	binding *rbacv1.RoleBinding
	issuer  *certManagerIssuer
	cert    *certManagerCertificate
	deploy  *appsv1.Deployment
	pdb     *policyv1.PodDisruptionBudget
	svc     *corev1.Service
	mwc     *admissionregistrationv1.MutatingWebhookConfiguration
}

func loadWebhookSet(t *testing.T) webhookSet {
	t.Helper()
	var s webhookSet
	n := 0
	for _, o := range loadTestExamples(t) {
		if !isWebhook(o) {
			continue
		}
		n++
		switch x := o.obj.(type) {
		case *corev1.Namespace:
			s.ns = x
		case *corev1.ServiceAccount:
			s.sa = x
		case *rbacv1.Role:
			s.role = x
		case *rbacv1.RoleBinding:
			s.binding = x
		case *certManagerIssuer:
			s.issuer = x
		case *certManagerCertificate:
			s.cert = x
		case *appsv1.Deployment:
			s.deploy = x
		case *policyv1.PodDisruptionBudget:
			s.pdb = x
		case *corev1.Service:
			s.svc = x
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			s.mwc = x
		default:
			t.Fatalf("%s: unexpected kind in examples/webhook", o)
		}
	}
	if n != 10 || s.ns == nil || s.sa == nil || s.role == nil || s.binding == nil || s.issuer == nil || s.cert == nil ||
		s.deploy == nil || s.pdb == nil || s.svc == nil || s.mwc == nil {
		t.Fatalf("examples/webhook: got %d objects %+v, want one of each of the 10 kinds", n, s)
	}
	return s
}

func env(c *corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

// TestWebhookExamples: the webhook's manifests agree with each other, with the Dockerfile, and with
// what podns webhook serves.
func TestWebhookExamples(t *testing.T) {
	for _, x := range checkWebhookSet(loadWebhookSet(t), loadTestImage(t)) {
		t.Error(x)
	}
}

// TestWebhookChecksCatch breaks one thing at a time in a copy of the webhook's manifests and expects
// the checks to name it.
func TestWebhookChecksCatch(t *testing.T) {
	img := loadTestImage(t)
	fail := admissionregistrationv1.Fail
	tests := []struct {
		name   string
		break_ func(s *webhookSet)
		want   string
	}{
		{"failurePolicy Fail", func(s *webhookSet) { s.mwc.Webhooks[0].FailurePolicy = &fail }, "failurePolicy"},
		{"no reinvocationPolicy", func(s *webhookSet) { s.mwc.Webhooks[1].ReinvocationPolicy = nil }, "reinvocationPolicy"},
		{"kube-system sent", func(s *webhookSet) {
			s.mwc.Webhooks[1].NamespaceSelector.MatchExpressions = s.mwc.Webhooks[1].NamespaceSelector.MatchExpressions[:1]
		}, "kube-system"},
		{"wrong path", func(s *webhookSet) { p := "/inject"; s.mwc.Webhooks[0].ClientConfig.Service.Path = &p }, "path /mutate"},
		{"list services", func(s *webhookSet) { s.role.Rules[0].Verbs = []string{"get", "list"} }, "get of services/kube-dns only"},
		{"another secret", func(s *webhookSet) { s.cert.Spec.SecretName = "other" }, "Certificate's secret"},
		{"one replica", func(s *webhookSet) { one := int32(1); s.deploy.Spec.Replicas = &one }, "replicas"},
		{"image drift", func(s *webhookSet) { s.deploy.Spec.Template.Spec.Containers[0].Image = "ghcr.io/podns/podns:v0.2.0" }, "PODNS_WEBHOOK_IMAGE"},
		{"plain HTTP probe", func(s *webhookSet) { s.deploy.Spec.Template.Spec.Containers[0].LivenessProbe.HTTPGet.Scheme = "" }, "HTTPS"},
		{"service selects nothing", func(s *webhookSet) { s.svc.Spec.Selector = map[string]string{"app": "x"} }, "service"},
		{"escalation", func(s *webhookSet) {
			v := true
			s.deploy.Spec.Template.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = &v
		}, "allowPrivilegeEscalation"},
		{"no CA injection", func(s *webhookSet) { s.mwc.Annotations = nil }, "inject-ca-from"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadWebhookSet(t) // a fresh copy
			tt.break_(&s)
			v := checkWebhookSet(s, img)
			if !containsSubstring(v, tt.want) {
				t.Errorf("got violations %q, want one containing %q", v, tt.want)
			}
		})
	}
}

// checkWebhookSet returns every way the webhook's manifests disagree; none means they are fine.
func checkWebhookSet(s webhookSet, img imageFacts) []string {
	ns := s.ns.Name
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }

	if s.ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		bad("namespace %s: want pod-security.kubernetes.io/enforce: restricted", ns)
	}
	// The Deployment: two replicas, restricted, the podns image as `podns webhook`.
	d := s.deploy
	pod := &d.Spec.Template.Spec
	if d.Namespace != ns || d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		bad("deployment: got namespace %q replicas %v, want %s and 2", d.Namespace, d.Spec.Replicas, ns)
	}
	v = append(v, checkRestricted(pod)...)
	if len(pod.Containers) != 1 {
		return append(v, fmt.Sprintf("webhook pod: got %d containers, want 1", len(pod.Containers)))
	}
	c := &pod.Containers[0]
	e := env(c)
	if !isPodnsImage(c.Image) || e["PODNS_WEBHOOK_IMAGE"] != c.Image {
		bad("webhook image %q and PODNS_WEBHOOK_IMAGE %q: want the same podns image", c.Image, e["PODNS_WEBHOOK_IMAGE"])
	}
	if !slices.Equal(c.Args, []string{"webhook"}) || (len(c.Command) > 0 && !slices.Equal(c.Command, img.entrypoint)) {
		bad("webhook container: got command %q args %q, want the image's entrypoint with args [webhook]", c.Command, c.Args)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.RunAsUser == nil || *sc.RunAsUser != img.uid {
		bad("webhook container: want readOnlyRootFilesystem and runAsUser %d (the Dockerfile's USER)", img.uid)
	}
	if pod.ServiceAccountName != s.sa.Name || s.sa.Namespace != ns {
		bad("serviceAccountName %q, want the ServiceAccount %s/%s", pod.ServiceAccountName, s.sa.Namespace, s.sa.Name)
	}
	// The certificate files are in the Secret cert-manager writes.
	for _, key := range []string{"PODNS_WEBHOOK_CERT", "PODNS_WEBHOOK_KEY"} {
		if secret := mountedSecret(pod, c, e[key]); secret != s.cert.Spec.SecretName {
			bad("%s=%q: in secret %q, want the Certificate's secret %q", key, e[key], secret, s.cert.Spec.SecretName)
		}
	}
	if s.cert.Spec.IssuerRef.Name != s.issuer.Metadata.Name || s.cert.Metadata.Namespace != ns || s.issuer.Metadata.Namespace != ns {
		bad("Certificate issuerRef %q: want the Issuer %s in %s", s.cert.Spec.IssuerRef.Name, s.issuer.Metadata.Name, ns)
	}
	// The probes and the Service reach the port podns webhook listens on (PODNS_WEBHOOK_ADDR), over HTTPS.
	addr := e["PODNS_WEBHOOK_ADDR"]
	if addr == "" {
		addr = ":8443"
	}
	_, portStr, err := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	if err != nil || port == 0 {
		bad("PODNS_WEBHOOK_ADDR %q is not host:port", addr)
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		switch {
		case p == nil || p.HTTPGet == nil:
			bad("%s probe: want httpGet", name)
		case p.HTTPGet.Scheme != corev1.URISchemeHTTPS || resolvePort(c, p.HTTPGet.Port) != port || !slices.Contains([]string{"/healthz", "/readyz"}, p.HTTPGet.Path):
			bad("%s probe: got %s %v %s, want HTTPS on %d to /healthz or /readyz", name, p.HTTPGet.Scheme, p.HTTPGet.Port.String(), p.HTTPGet.Path, port)
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		bad("readiness probe: want /readyz (fails until the cluster DNS address is known)")
	}
	podLabels := labels.Set(d.Spec.Template.Labels)
	if s.svc.Namespace != ns || !labels.SelectorFromSet(s.svc.Spec.Selector).Matches(podLabels) || len(s.svc.Spec.Ports) != 1 {
		bad("service: want one port in %s selecting the webhook's pods", ns)
	} else if got := resolvePort(c, s.svc.Spec.Ports[0].TargetPort); got != port {
		bad("service targetPort %s is %d, want %d", s.svc.Spec.Ports[0].TargetPort.String(), got, port)
	}
	if sel, err := metav1.LabelSelectorAsSelector(s.pdb.Spec.Selector); err != nil || !sel.Matches(podLabels) || s.pdb.Namespace != ns {
		bad("PodDisruptionBudget: want it in %s selecting the webhook's pods", ns)
	}
	if s.pdb.Spec.MinAvailable == nil || s.pdb.Spec.MinAvailable.IntValue() < 1 || s.pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
		bad("PodDisruptionBudget minAvailable %v: want at least 1 and fewer than the replicas", s.pdb.Spec.MinAvailable)
	}

	// The certificate names the Service's DNS name; cert-manager injects its CA.
	if want := s.svc.Name + "." + ns + ".svc"; !slices.Contains(s.cert.Spec.DNSNames, want) {
		bad("Certificate dnsNames %v: want %s, the name the API server connects to", s.cert.Spec.DNSNames, want)
	}
	if got, want := s.mwc.Annotations["cert-manager.io/inject-ca-from"], ns+"/"+s.cert.Metadata.Name; got != want {
		bad("cert-manager.io/inject-ca-from: got %q, want %q", got, want)
	}
	v = append(v, checkWebhooks(s)...)
	v = append(v, checkRBAC(s)...)
	return v
}

// mountedSecret returns the Secret whose volume holds file in container c, or "".
func mountedSecret(pod *corev1.PodSpec, c *corev1.Container, file string) string {
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for _, vol := range pod.Volumes {
			if vol.Name == m.Name && vol.Secret != nil {
				return vol.Secret.SecretName
			}
		}
	}
	return ""
}

func checkWebhooks(s webhookSet) []string {
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	if len(s.mwc.Webhooks) == 0 {
		return []string{"MutatingWebhookConfiguration: no webhooks"}
	}
	for _, w := range s.mwc.Webhooks {
		if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Ignore {
			bad("%s: failurePolicy must be Ignore (a webhook outage must not stop pods)", w.Name)
		}
		if w.SideEffects == nil || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
			bad("%s: sideEffects must be None", w.Name)
		}
		if w.ReinvocationPolicy == nil {
			bad("%s: reinvocationPolicy: choose one", w.Name)
		}
		if !slices.Contains(w.AdmissionReviewVersions, "v1") {
			bad("%s: admissionReviewVersions %v: podns webhook speaks v1", w.Name, w.AdmissionReviewVersions)
		}
		ref := w.ClientConfig.Service
		if ref == nil || ref.Name != s.svc.Name || ref.Namespace != s.svc.Namespace || ref.Path == nil || *ref.Path != "/mutate" ||
			(ref.Port != nil && *ref.Port != s.svc.Spec.Ports[0].Port) {
			bad("%s: clientConfig.service must be %s/%s port %d path /mutate", w.Name, s.svc.Namespace, s.svc.Name, s.svc.Spec.Ports[0].Port)
		}
		if len(w.Rules) != 1 || !slices.Equal(w.Rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Create}) ||
			!slices.Equal(w.Rules[0].Resources, []string{"pods"}) || !slices.Equal(w.Rules[0].APIGroups, []string{""}) {
			bad("%s: rules: want CREATE of core pods only", w.Name)
		}
		if w.TimeoutSeconds == nil || *w.TimeoutSeconds > 10 {
			bad("%s: timeoutSeconds %v: want at most 10 s of delay per pod when the webhook hangs", w.Name, w.TimeoutSeconds)
		}
	}
	// Which namespaces each webhook is sent pods from.
	tests := []struct {
		labels map[string]string
		want   []bool // per webhook, in order
	}{
		{map[string]string{"kubernetes.io/metadata.name": "apps", "podns.io/inject": "enabled"}, []bool{true, false}},
		{map[string]string{"kubernetes.io/metadata.name": "apps"}, []bool{false, true}},
		{map[string]string{"kubernetes.io/metadata.name": "apps", "podns.io/inject": "disabled"}, []bool{false, true}},
		{map[string]string{"kubernetes.io/metadata.name": "kube-system", "podns.io/inject": "enabled"}, []bool{false, false}},
		{map[string]string{"kubernetes.io/metadata.name": "kube-system"}, []bool{false, false}},
		{map[string]string{"kubernetes.io/metadata.name": s.ns.Name, "podns.io/inject": "enabled"}, []bool{false, false}},
	}
	if len(s.mwc.Webhooks) != 2 {
		return append(v, fmt.Sprintf("got %d webhooks, want 2 (labelled namespaces, annotated pods)", len(s.mwc.Webhooks)))
	}
	for _, tt := range tests {
		for i, w := range s.mwc.Webhooks {
			sel, err := metav1.LabelSelectorAsSelector(w.NamespaceSelector)
			if err != nil {
				bad("%s: namespaceSelector: %v", w.Name, err)
				continue
			}
			if got := sel.Matches(labels.Set(tt.labels)); got != tt.want[i] {
				bad("%s: namespace %v: got sent %v, want %v", w.Name, tt.labels, got, tt.want[i])
			}
		}
	}
	return v
}

// checkRBAC: the webhook may get the kube-dns Service in kube-system, and nothing else.
func checkRBAC(s webhookSet) []string {
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	r := s.role
	if r.Namespace != "kube-system" || len(r.Rules) != 1 {
		return []string{fmt.Sprintf("role %s/%s: want one rule in kube-system", r.Namespace, r.Name)}
	}
	rule := r.Rules[0]
	if !slices.Equal(rule.APIGroups, []string{""}) || !slices.Equal(rule.Resources, []string{"services"}) ||
		!slices.Equal(rule.Verbs, []string{"get"}) || !slices.Equal(rule.ResourceNames, []string{"kube-dns"}) {
		bad("role rule %+v: want get of services/kube-dns only", rule)
	}
	b := s.binding
	if b.Namespace != r.Namespace || b.RoleRef.Kind != "Role" || b.RoleRef.Name != r.Name {
		bad("rolebinding %s/%s: want it to bind Role %s in %s", b.Namespace, b.Name, r.Name, r.Namespace)
	}
	if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != s.sa.Name || b.Subjects[0].Namespace != s.sa.Namespace {
		bad("rolebinding subjects %+v: want the ServiceAccount %s/%s only", b.Subjects, s.sa.Namespace, s.sa.Name)
	}
	if d := s.deploy.Spec.Template.Spec.Containers[0]; env(&d)["PODNS_WEBHOOK_DNS_SERVICE"] != "" && env(&d)["PODNS_WEBHOOK_DNS_SERVICE"] != "kube-dns" {
		bad("PODNS_WEBHOOK_DNS_SERVICE is not the Role's resourceNames kube-dns")
	}
	return v
}
