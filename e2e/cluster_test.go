//go:build linux

package e2e

import (
	"context"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podns/podns/internal/kubetest"
)

// e2eServiceCIDR6 is the IPv6 half of the dual-stack Service range, for the Service that has an AAAA.
const e2eServiceCIDR6 = "fd00:10:96::/112"

// The cluster kube-dns answers from: Services and EndpointSlices created through the API server, as a
// cluster's controllers would have made them (none run here, so the EndpointSlices are written by hand).
// The pod under test lives in namespace "apps"; "other" is a second namespace.
var (
	// e2eClusterIPServices are ClusterIP Services with fixed addresses, so that answers can be
	// compared with constants. Each named port gets an SRV record.
	e2eClusterIPServices = []struct {
		namespace, name string
		ips             []string // IPv4 first; a second, IPv6, address makes the Service dual-stack
		ports           []corev1.ServicePort
	}{
		{"kube-system", "kube-dns", []string{e2eClusterIP}, []corev1.ServicePort{
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP}}},
		{"apps", "graylog", []string{"10.96.1.7"}, []corev1.ServicePort{{Name: "http", Port: 9000}}},
		{"apps", "dual", []string{"10.96.1.8", "fd00:10:96::8"}, []corev1.ServicePort{{Name: "http", Port: 80}}},
		{"other", "db", []string{"10.96.2.5"}, []corev1.ServicePort{{Name: "pg", Port: 5432}}},
	}
	// e2eHeadless are headless Services and their endpoints: kube-dns answers the Service's name with
	// every ready endpoint, and an endpoint's hostname with its address.
	e2eHeadless = []struct {
		name      string
		endpoints []e2eEndpoint
	}{
		{"web", []e2eEndpoint{{"10.244.1.10", "web-0"}, {"10.244.1.11", "web-1"}}},
		// 60 endpoints: the A answer (about 1 KB) does not fit 512 bytes.
		{"big", e2eEndpoints("10.244.2.", 1, 60)},
	}
)

// e2eEndpoint is one address of a headless Service, with its hostname ("" for none).
type e2eEndpoint struct{ addr, hostname string }

func e2eEndpoints(prefix string, first, last int) []e2eEndpoint {
	var eps []e2eEndpoint
	for i := first; i <= last; i++ {
		eps = append(eps, e2eEndpoint{addr: prefix + strconv.Itoa(i)})
	}
	return eps
}

// createCluster creates, through the API server, the Namespaces and Services kube-dns answers from.
func createCluster(ctx context.Context, t *testing.T, kc *kubetest.Client) {
	t.Helper()
	for _, ns := range []string{"apps", "other"} {
		if err := kc.CreateNamespace(ctx, ns, nil); err != nil {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
	}
	for _, s := range e2eClusterIPServices {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: s.name},
			Spec: corev1.ServiceSpec{ClusterIP: s.ips[0], ClusterIPs: s.ips, Ports: s.ports}}
		if len(s.ips) > 1 {
			policy := corev1.IPFamilyPolicyRequireDualStack
			svc.Spec.IPFamilyPolicy = &policy
		}
		mustCreate(ctx, t, kc, svc)
	}
	mustCreate(ctx, t, kc, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "ext"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "www.example.com"}})
	for _, h := range e2eHeadless {
		createHeadless(ctx, t, kc, "apps", h.name, h.endpoints)
	}
}

// createHeadless creates a headless Service with a named port and its EndpointSlice, as the
// EndpointSlice controller would write it for pods with hostnames (a StatefulSet's).
func createHeadless(ctx context.Context, t *testing.T, kc *kubetest.Client, namespace, name string, eps []e2eEndpoint) {
	t.Helper()
	mustCreate(ctx, t, kc, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	port, portName, proto, ready := int32(80), "http", corev1.ProtocolTCP, true
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name + "-e2e",
			Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port, Protocol: &proto}},
	}
	for _, ep := range eps {
		e := discoveryv1.Endpoint{Addresses: []string{ep.addr},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}}
		if ep.hostname != "" {
			e.Hostname = &ep.hostname
		}
		slice.Endpoints = append(slice.Endpoints, e)
	}
	mustCreate(ctx, t, kc, slice)
}

func mustCreate(ctx context.Context, t *testing.T, kc *kubetest.Client, obj kubetest.Object) {
	t.Helper()
	if err := kc.Create(ctx, obj); err != nil {
		t.Fatalf("creating %s/%s: %v", obj.GetNamespace(), obj.GetName(), err)
	}
}
