package kubetest

import (
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestCluster starts the control plane on the machine's loopback and makes each kind of call the
// client offers, checking what the server did with it.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	c := Start(t, Options{})
	ctx := t.Context()
	kc := c.Client

	if err := kc.CreateNamespace(ctx, "apps", nil); err != nil {
		t.Fatal(err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "default"}}
	if err := kc.Get(ctx, sa); err != nil || sa.UID == "" {
		t.Fatalf("default ServiceAccount: got uid %q, %v, want it created", sa.UID, err)
	}

	t.Run("Service gets a ClusterIP", func(t *testing.T) {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "graylog"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9000}}}}
		if err := kc.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(svc.Spec.ClusterIP, "10.") {
			t.Errorf("ClusterIP: got %q, want one from 10.96.0.0/12", svc.Spec.ClusterIP)
		}
		if err := kc.Delete(ctx, svc); err != nil {
			t.Fatal(err)
		}
		if err := kc.Get(ctx, svc); Reason(err) != metav1.StatusReasonNotFound {
			t.Errorf("Get after Delete: got %v, want NotFound", err)
		}
	})

	t.Run("EndpointSlice", func(t *testing.T) {
		host := "web-0"
		es := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web-1",
				Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.1.10"}, Hostname: &host}},
		}
		if err := kc.Create(ctx, es); err != nil {
			t.Fatal(err)
		}
		if es.UID == "" {
			t.Errorf("got no uid, want the server's copy decoded")
		}
	})

	t.Run("strict field validation", func(t *testing.T) {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "ConfigMap",
			"metadata": map[string]any{"namespace": "apps", "name": "typo"},
			"dtaa":     map[string]any{"a": "b"},
		}}
		err := kc.DryRunCreate(ctx, u)
		if Reason(err) != metav1.StatusReasonBadRequest || !strings.Contains(err.Error(), "dtaa") {
			t.Errorf("unknown field: got %v, want BadRequest naming it", err)
		}
	})

	t.Run("dry run stores nothing", func(t *testing.T) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "dry"}}
		if err := kc.DryRunCreate(ctx, cm); err != nil {
			t.Fatal(err)
		}
		if err := kc.Get(ctx, &corev1.ConfigMap{ObjectMeta: cm.ObjectMeta}); Reason(err) != metav1.StatusReasonNotFound {
			t.Errorf("Get after dry run: got %v, want NotFound", err)
		}
	})

	t.Run("PodSecurity restricted", func(t *testing.T) {
		if err := kc.CreateNamespace(ctx, "locked", map[string]string{
			"pod-security.kubernetes.io/enforce": "restricted"}); err != nil {
			t.Fatal(err)
		}
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "locked", Name: "root"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		err := kc.DryRunCreate(ctx, pod)
		if Reason(err) != metav1.StatusReasonForbidden || !strings.Contains(err.Error(), "restricted") {
			t.Errorf("unconfined pod: got %v, want Forbidden by PodSecurity restricted", err)
		}
	})

	t.Run("kubeconfig", func(t *testing.T) {
		data, err := os.ReadFile(c.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{c.URL, c.CAFile, c.Token, "current-context: " + Context} {
			if !strings.Contains(string(data), want) {
				t.Errorf("kubeconfig: got %q, want it to contain %q", data, want)
			}
		}
	})
}
