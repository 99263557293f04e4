//go:build linux

package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podns/podns/internal/kubetest"
)

const (
	// e2eTTL is the TTL kube-dns gives cluster records and the SOA minimum of its negative answers
	// (the kubernetes plugin's `ttl 30`); its cache plugin (`cache 30`) keeps an answer that long too.
	e2eTTL = 30 * time.Second
	// e2eChangeSlack is added to e2eTTL: the API server's watch reaching CoreDNS's informer (tens of
	// milliseconds) and the polling interval.
	e2eChangeSlack = 3 * time.Second
	// e2eChangePoll is how often the change phase asks again.
	e2eChangePoll = 250 * time.Millisecond
)

// testChange creates a Service while the world runs and requires both pods to resolve it, then deletes
// it and requires both to stop resolving it within its TTL: kube-dns's cache and podns's each keep the
// answer no longer than the TTL the record carried.
func testChange(t *testing.T, w *e2eWorld, kc *kubetest.Client, client e2eClient) {
	const name, ip = "arrival", "10.96.1.99"
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name},
		Spec: corev1.ServiceSpec{ClusterIP: ip, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	created := time.Now()
	if err := kc.Create(w.ctx, svc); err != nil {
		t.Fatal(err)
	}
	// Nothing asked for the name before: no negative answer is cached anywhere, and it resolves as
	// soon as CoreDNS's informer has the Service. A query that raced ahead of the informer would get
	// an NXDOMAIN that both caches keep for its negative TTL, hence the same bound.
	w.waitPods(t, client, name, ip, created, "after its creation")
	deleted := time.Now()
	if err := kc.Delete(w.ctx, svc); err != nil {
		t.Fatal(err)
	}
	// Every cached copy of the answer was fetched before the deletion, so none outlives deleted+TTL.
	w.waitPods(t, client, name, "error:EAI_NONAME", deleted, "after its deletion")
}

// waitPods resolves name in both pods at once, every e2eChangePoll, until each gets want; it fails t
// when one has not by since+e2eTTL+e2eChangeSlack, and logs how long each took.
func (w *e2eWorld) waitPods(t *testing.T, client e2eClient, name, want string, since time.Time, what string) {
	t.Helper()
	pods := []*e2ePod{w.cf, w.podns}
	took := make([]time.Duration, len(pods))
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, pod := range pods {
		wg.Go(func() { took[i], errs[i] = w.waitResult(pod, client, name, want, since) })
	}
	wg.Wait()
	for i, pod := range pods {
		if errs[i] != nil {
			t.Error(errs[i])
			continue
		}
		t.Logf("%s: %s answered %q %v %s (TTL %v)", pod.netns, name, want, took[i].Round(time.Millisecond), what, e2eTTL)
	}
	if t.Failed() {
		t.FailNow()
	}
}

// waitResult resolves name in pod until the result is want, and returns how long after since that was.
func (w *e2eWorld) waitResult(pod *e2ePod, client e2eClient, name, want string, since time.Time) (time.Duration, error) {
	deadline := since.Add(e2eTTL + e2eChangeSlack)
	for {
		got, err := w.lookup(pod, client, []string{name})
		if err != nil {
			return 0, fmt.Errorf("%s in %s: %w", name, pod.netns, err)
		}
		if got[0].result == want {
			return time.Since(since), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%s in %s after %v: got %q, want %q",
				name, pod.netns, time.Since(since).Round(time.Millisecond), got[0].result, want)
		}
		select {
		case <-w.ctx.Done():
			return 0, fmt.Errorf("%s in %s: %w", name, pod.netns, w.ctx.Err())
		case <-time.After(e2eChangePoll):
		}
	}
}
