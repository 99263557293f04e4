//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podns/podns/internal/kubetest"
	"github.com/podns/podns/internal/proctest"
)

const (
	// e2eCostTarget is issue 16's aim: a cold pass through podns costs kube-dns at most half the
	// queries the same pass costs it under ClusterFirst.
	e2eCostTarget = 0.5
	// e2eCostBound is the share of ClusterFirst's queries TestE2EWalkCost holds podns's total to. The
	// pass costs 62 or 63 of ClusterFirst's 129 (0.48-0.49: which walk of a getaddrinfo pair joins
	// the other's lookups depends on timing); the bound leaves those few queries of slack over the
	// target so that a slow CI machine does not fail the suite on one of them.
	e2eCostBound = 0.55
	// e2ePodnsHTTPPort is podns's HTTP listener in TestE2EWalkCost, on the podns pod's own loopback
	// (CoreDNS's 9153 is in the kube-dns namespace): the test reads podns_upstream_in_flight there.
	e2ePodnsHTTPPort = 9153
	// e2eRTTSamples is how many direct lookups measure a kube-dns round trip: enough for a median that
	// one scheduling hiccup does not move, a few milliseconds in all.
	e2eRTTSamples = 25
	// e2eTimerWait is how long an external lookup through podns may take before it fails the test:
	// one that waited for a timer, not for kube-dns. The shortest timer of a walk is its 100 ms
	// ask-ahead (README, "What a search costs the cluster DNS"), so the bound is that timer itself, in
	// time, not in kube-dns's round trips: the lookups took up to 12 round trips here, but 147 (20 ms)
	// with the race detector's podns on a loaded CI machine, where a round trip was 0.14 ms. Below it
	// the figures are logged, not asserted.
	e2eTimerWait = 100 * time.Millisecond
)

// e2eClusterFirstResolvConf is ClusterFirst's resolv.conf, as the kubelet writes it for a pod in
// namespace "apps" with the default dnsPolicy.
const e2eClusterFirstResolvConf = "search apps.svc.cluster.local svc.cluster.local cluster.local\n" +
	"nameserver " + e2eClusterIP + "\n" +
	"options ndots:5\n"

// e2eCostCase is a name of the cold pass and its class, the rows of README's "What a search costs the
// cluster DNS".
type e2eCostCase struct {
	class string
	e2eCase
}

// e2eCostCases is resolver/cost_test.go's costMix in the names this world has: the cluster of
// cluster_test.go (with createCostCluster's two Services), the pod-IP names of `pods insecure`
// (testdata/e2e/Corefile.tmpl), and Knot's example.com and example.org as the internet. A lookup is
// glibc's getaddrinfo (A and AAAA at once), or, for the SRV, the Go resolver's LookupSRV.
func e2eCostCases() []e2eCostCase {
	const (
		short    = "short service"
		svcNs    = "svc.ns"
		svcNsSvc = "svc.ns.svc"
		fqdn     = "FQDN (typed without the dot)"
		headless = "headless service and members"
		podIP    = "pod IP"
		external = "external"
		missing  = "missing"
		www      = "192.0.2.10,2001:db8::10"
		none     = "error:EAI_NONAME"
	)
	c := func(class, name, want string) e2eCostCase {
		return e2eCostCase{class: class, e2eCase: e2eCase{kind: class, name: name, want: want}}
	}
	return []e2eCostCase{
		c(short, "graylog", "10.96.1.7"),
		c(short, "dual", "10.96.1.8,fd00:10:96::8"),
		// ExternalName: a CNAME to www.example.com. kube-dns counts each question twice: its
		// kubernetes plugin looks the target up through its own plugin chain, which counts it again.
		c(short, "ext", www),
		c(svcNs, "db.other", "10.96.2.5"),
		c(svcNs, "kube-dns.kube-system", e2eClusterIP),
		c(svcNs, "cache.other", "10.96.2.6"),
		c(svcNs, "metrics.kube-system", "10.96.0.20"),
		c(svcNsSvc, "graylog.apps.svc", "10.96.1.7"),
		c(svcNsSvc, "db.other.svc", "10.96.2.5"),
		c(fqdn, "graylog.apps.svc.cluster.local", "10.96.1.7"),
		c(fqdn, "kube-dns.kube-system.svc.cluster.local", e2eClusterIP),
		c(headless, "web", "10.244.1.10,10.244.1.11"),
		c(headless, "web-0.web", "10.244.1.10"),
		c(headless, "web-1.web", "10.244.1.11"),
		c(podIP, "10-244-1-10.apps.pod", "10.244.1.10"),
		c(podIP, "10-244-3-7.apps.pod.cluster.local", "10.244.3.7"),
		c(external, "www.example.com", www),
		c(external, "only4.example.com", "192.0.2.4"),
		c(external, "alias.example.com", www),
		c(external, "www.example.org", "198.51.100.10"),
		c(missing, "missing", none),
		c(missing, "nope.example.com", none),
		c(missing, "nosuch.other", none),
		{class: "SRV", e2eCase: e2eCase{kind: "SRV", name: "srv:_http._tcp.graylog", srv: true,
			want: "0 100 9000 graylog.apps.svc.cluster.local."}},
	}
}

// createCostCluster adds the Services costMix has and cluster_test.go does not: a second Service in
// "other" and one in "kube-system", each a namespace the pod is not in.
func createCostCluster(ctx context.Context, t *testing.T, kc *kubetest.Client) {
	t.Helper()
	for _, s := range []struct{ namespace, name, ip string }{
		{"other", "cache", "10.96.2.6"},
		{"kube-system", "metrics", "10.96.0.20"},
	} {
		mustCreate(ctx, t, kc, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: s.name},
			Spec: corev1.ServiceSpec{ClusterIP: s.ip, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	}
}

// TestE2EWalkCost (issue 16) counts, with kube-dns's own request counter (CoreDNS's
// coredns_dns_requests_total), what one cold pass of lookups over a mix of names costs the cluster DNS
// from a pod under ClusterFirst and from a pod with podns, by name class; it requires podns to cost no
// class more than ClusterFirst, the total at most e2eCostBound of ClusterFirst's, and the same answers.
// Then it times external lookups through podns in units of kube-dns's own round trip. Run with -v for
// the table (Markdown, for README's "What a search costs the cluster DNS").
//
// Both passes are cold everywhere: kube-dns is restarted before each (its cache plugin's cache lives
// in the process), glibc keeps no cache, and podns is started for its pass, with an empty cache.
//
// It needs what TestE2E needs.
func TestE2EWalkCost(t *testing.T) {
	w, clients, cluster, kubeDNS := startE2E(t, createCostCluster)
	glibc, goClient := clients[0], clients[2]
	w.setResolvConf(w.podns, podnsResolvConf(t))
	bin := w.buildPodns()

	cases := e2eCostCases()
	kubeDNS = w.restartCoreDNS(kubeDNS, cluster)
	cf := w.costPass(w.cf, cases, glibc, goClient, func() {})

	kubeDNS = w.restartCoreDNS(kubeDNS, cluster)
	podns := w.startColdPodns(bin, "podns-cost")
	idle := w.podnsIdle(podns)
	viaPodns := w.costPass(w.podns, cases, glibc, goClient, idle)
	w.logPodnsCounters(podns)
	w.checkPodnsRaces(podns)

	t.Run("answers", func(t *testing.T) {
		for i, c := range cases {
			client := glibc.name
			if c.srv {
				client = goClient.name
			}
			t.Run(c.name, func(t *testing.T) {
				checkAnswer(t, client, c.e2eCase, cf[i].result, viaPodns[i].result)
			})
		}
	})
	t.Run("queries", func(t *testing.T) {
		checkWalkCost(t, cases, cf, viaPodns)
	})
	t.Run("round trips", func(t *testing.T) {
		testWalkRoundTrips(t, w.forTest(t), glibc, bin)
	})

	for _, netns := range []string{w.dns, w.cf.netns, w.podns.netns} {
		if escaped := w.nftCounters(netns)["escaped"]; escaped != 0 {
			t.Errorf("%s: %d packets tried to leave for an address outside the test world, want 0", netns, escaped)
		}
	}
}

// e2eCost is what one lookup of a pass returned and cost kube-dns.
type e2eCost struct {
	result  string
	queries float64 // DNS requests kube-dns counted during the lookup
}

// costPass looks up every case once from pod, one client process per name, and reads kube-dns's
// request counter after each: the queries that lookup cost it. settle runs between the lookup and the
// reading: it returns once the pod's resolver has nothing left in flight. (Under ClusterFirst there is
// nothing to wait for: glibc and the Go resolver send a query only to wait for its answer, and the
// process has exited. CoreDNS counts a request once it has written the reply, and a reply to an
// in-cluster name takes it microseconds; names it forwards to Knot are ones the answer waits for.)
func (w *e2eWorld) costPass(pod *e2ePod, cases []e2eCostCase, glibc, goClient e2eClient, settle func()) []e2eCost {
	w.t.Helper()
	costs := make([]e2eCost, len(cases))
	before := w.kubeDNSRequests()
	for i, c := range cases {
		client := glibc
		if c.srv {
			client = goClient
		}
		got, err := w.lookup(pod, client, []string{c.name})
		if err != nil {
			w.t.Fatalf("cost pass: %v", err)
		}
		settle()
		after := w.kubeDNSRequests()
		costs[i] = e2eCost{result: got[0].result, queries: after - before}
		before = after
	}
	return costs
}

// e2eCostRow is one class of the cost table: the names in it and the queries they cost, in total.
type e2eCostRow struct {
	class     string
	names     int
	cf, podns float64
}

// checkWalkCost logs the cost of every name and the table by class, and requires podns to cost no
// class more than ClusterFirst and the total at most e2eCostBound of ClusterFirst's.
func checkWalkCost(t *testing.T, cases []e2eCostCase, cf, viaPodns []e2eCost) {
	var rows []*e2eCostRow
	byClass := make(map[string]*e2eCostRow)
	total := &e2eCostRow{class: "total"}
	for i, c := range cases {
		t.Logf("%-40s ClusterFirst %2.0f, podns %2.0f", c.name, cf[i].queries, viaPodns[i].queries)
		if cf[i].queries < 1 {
			// Every lookup reaches kube-dns under ClusterFirst: a zero is a counter that did not move.
			t.Errorf("%s under ClusterFirst: kube-dns counted %v queries, want at least 1", c.name, cf[i].queries)
		}
		r := byClass[c.class]
		if r == nil {
			r = &e2eCostRow{class: c.class}
			byClass[c.class] = r
			rows = append(rows, r)
		}
		for _, r := range []*e2eCostRow{r, total} {
			r.names++
			r.cf += cf[i].queries
			r.podns += viaPodns[i].queries
		}
	}
	t.Logf("kube-dns queries per lookup (coredns_dns_requests_total), one cold pass of %d names:\n%s",
		total.names, e2eCostTable(append(rows, total)))
	t.Logf("total: ClusterFirst %.0f queries, podns %.0f: %.2f of ClusterFirst's (issue 16's target %.1f, bound %.1f)",
		total.cf, total.podns, total.podns/total.cf, e2eCostTarget, e2eCostBound)
	for _, r := range rows {
		if r.podns > r.cf {
			t.Errorf("%s: podns cost kube-dns %.0f queries, want at most ClusterFirst's %.0f", r.class, r.podns, r.cf)
		}
	}
	if total.podns > e2eCostBound*total.cf {
		t.Errorf("total: podns cost kube-dns %.0f queries, want at most %.1f of ClusterFirst's %.0f",
			total.podns, e2eCostBound, total.cf)
	}
}

// e2eCostTable formats the rows as Markdown: queries per lookup, by class.
func e2eCostTable(rows []*e2eCostRow) string {
	var b strings.Builder
	b.WriteString("| class | names | ClusterFirst | podns |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f |\n", r.class, r.names, r.cf/float64(r.names), r.podns/float64(r.names))
	}
	return b.String()
}

// testWalkRoundTrips times external lookups through a fresh podns, the first of each TLD (its cuts not
// yet known) and later ones (cuts known), against two direct lookups from the ClusterFirst pod (glibc,
// A and AAAA at once, rooted so that each is asked once): kube-dns's in-cluster round trip, the median
// for a name it has cached; and its external round trip, the median for names it has not cached and
// forwards to Knot, the least any external lookup takes. Every external name timed through podns is
// new to kube-dns too. The figures are logged; only one that waited for a timer (e2eTimerWait) fails the test.
func testWalkRoundTrips(t *testing.T, w *e2eWorld, glibc e2eClient, bin string) {
	const cached = "graylog.apps.svc.cluster.local."
	rtt := w.medianLookup(w.cf, glibc, cached, slices.Repeat([]string{cached}, e2eRTTSamples))
	var fresh []string
	for i := range e2eRTTSamples {
		fresh = append(fresh, "direct-"+strconv.Itoa(i)+".w.example.net.")
	}
	forwarded := w.medianLookup(w.cf, glibc, cached, fresh)
	if rtt <= 0 || forwarded <= 0 {
		t.Fatalf("kube-dns round trips measured as %v and %v", rtt, forwarded)
	}
	podns := w.startColdPodns(bin, "podns-rtt")
	defer w.checkPodnsRaces(podns)
	idle := w.podnsIdle(podns)
	// The warm-up opens podns's connection to kube-dns; every later lookup of cached is a cache hit.
	hit := w.medianLookup(w.podns, glibc, cached, slices.Repeat([]string{cached}, e2eRTTSamples))
	idle()
	t.Logf("kube-dns round trip (glibc in the ClusterFirst pod, medians of %d): in-cluster, cached %s; external, forwarded %s (%.1f in-cluster); a podns cache hit %s (%.1f)",
		e2eRTTSamples, e2eMsFine(rtt), e2eMsFine(forwarded), float64(forwarded)/float64(rtt),
		e2eMsFine(hit), float64(hit)/float64(rtt))

	// In order: the first name of each TLD meets its cuts unknown, the later ones known. Names with
	// ndots (5) dots are asked as they are first, as glibc does: no walk, so they time what is left of
	// a lookup through podns once the walk costs nothing, for a name kube-dns forwards and for one it
	// answers itself.
	const unknown, known, external, cluster = "cuts unknown", "cuts known", "external, as is", "in-cluster, as is"
	samples := []struct{ name, kind string }{
		{"mail.example.com", unknown}, {"ns1.example.com", known},
		{"api.example.org", unknown}, {"mail.example.org", known}, {"ns1.example.org", known},
		{"www.example.net", unknown}, {"api.example.net", known}, {"mail.example.net", known},
		{"ns1.example.net", known},
		{"a.b.c.podns-1.w.example.net", external}, {"a.b.c.podns-2.w.example.net", external},
		{"a.b.c.podns-3.w.example.net", external},
		{"web-0.web.apps.svc.cluster.local", cluster}, {"web-1.web.apps.svc.cluster.local", cluster},
	}
	trips := make(map[string][]float64)
	for _, s := range samples {
		before := w.kubeDNSRequests()
		// The cached name first, in the same process: glibc's first lookup also reads its
		// configuration, which the direct round trips it is compared with did not pay.
		got, err := w.lookup(w.podns, glibc, []string{cached, s.name})
		if err != nil {
			t.Fatal(err)
		}
		idle() // probes the walk left behind must not slow the next sample, and are counted
		r := got[1]
		if strings.HasPrefix(r.result, "error:") {
			t.Errorf("%s through podns: got %s, want its address", s.name, r.result)
		}
		n := float64(r.elapsed) / float64(rtt)
		trips[s.kind] = append(trips[s.kind], n)
		t.Logf("%-33s %-17s %s: %4.1f in-cluster round trips, %4.1f external; %.0f kube-dns queries",
			s.name, s.kind, e2eMsFine(r.elapsed), n, float64(r.elapsed)/float64(forwarded),
			w.kubeDNSRequests()-before)
		if r.elapsed >= e2eTimerWait {
			t.Errorf("%s through podns took %v (%.1f of kube-dns's in-cluster round trips of %v), want under the walk's %v timer",
				s.name, r.elapsed, n, rtt, e2eTimerWait)
		}
	}
	var parts []string
	for _, kind := range []string{unknown, known, external, cluster} {
		xs := trips[kind]
		slices.Sort(xs)
		parts = append(parts, fmt.Sprintf("%s %.1f (of %v)", kind, xs[len(xs)/2], e2eRound(xs)))
	}
	t.Logf("lookups through podns, in kube-dns's in-cluster round trips (medians; kube-dns's external round trip is %.1f): %s",
		float64(forwarded)/float64(rtt), strings.Join(parts, "; "))
}

// medianLookup looks up warm, then names, in one client process, and returns the median time of names:
// the first lookup of a process also reads glibc's configuration.
func (w *e2eWorld) medianLookup(pod *e2ePod, client e2eClient, warm string, names []string) time.Duration {
	w.t.Helper()
	got, err := w.lookup(pod, client, append([]string{warm}, names...))
	if err != nil {
		w.t.Fatal(err)
	}
	var times []time.Duration
	for _, r := range got[1:] {
		if strings.HasPrefix(r.result, "error:") {
			w.t.Fatalf("%s in %s: got %s, want its address", r.name, pod.netns, r.result)
		}
		times = append(times, r.elapsed)
	}
	slices.Sort(times)
	return times[len(times)/2]
}

// e2eMsFine formats a sub-millisecond duration: e2eMs's one decimal would round a round trip away.
func e2eMsFine(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}

func e2eRound(xs []float64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.FormatFloat(x, 'f', 1, 64)
	}
	return out
}

// waitZones waits until Knot answers the SOA of each zone: startKnot waits only for the zones every
// test uses.
func (w *e2eWorld) waitZones(knot *proctest.Proc, zones ...string) {
	w.t.Helper()
	w.waitFor(knot, e2eStartTimeout, func() error {
		for _, zone := range zones {
			out, err := w.output(w.dns, "dig", "@127.0.0.1", "-p", strconv.Itoa(e2eKnotPort),
				"+tries=1", "+time=1", "+short", zone, "SOA")
			if err != nil {
				return err
			}
			if strings.TrimSpace(out) == "" {
				return fmt.Errorf("no SOA for %s from Knot yet", zone)
			}
		}
		return nil
	})
}

// restartCoreDNS replaces kube-dns with a fresh CoreDNS, whose cache starts empty. It returns once the
// loop plugin's startup query (testdata/e2e/Corefile.tmpl's `loop`: a query CoreDNS sends itself, the
// only one no pod asked) has been counted, so that from then on the counter moves only for the pods.
func (w *e2eWorld) restartCoreDNS(p *proctest.Proc, cluster *kubetest.Cluster) *proctest.Proc {
	w.t.Helper()
	p.Stop()
	p = w.startCoreDNS(cluster)
	w.waitFor(p, e2eStartTimeout, func() error {
		if n := w.kubeDNSRequests(); n < 1 {
			return fmt.Errorf("kube-dns counted %v requests, want the loop plugin's", n)
		}
		return nil
	})
	return p
}

// kubeDNSRequests is kube-dns's coredns_dns_requests_total, every zone and type: 0 before CoreDNS has
// counted anything (it shows the counter only from then on).
func (w *e2eWorld) kubeDNSRequests() float64 {
	w.t.Helper()
	return w.promSum(w.dns, e2eMetricsPort, "coredns_dns_requests_total")
}

// startColdPodns runs podns in the podns pod with its HTTP listener on the pod's loopback, and waits
// only until it listens (its /healthz answers once the DNS listeners are up, main.go): startPodns's
// readiness lookup would put a cluster name in the cache that the pass then finds there.
func (w *e2eWorld) startColdPodns(bin, name string) *proctest.Proc {
	w.t.Helper()
	var env []string
	for _, kv := range podnsEnv() {
		if strings.HasPrefix(kv, "PODNS_HTTP_ADDR=") {
			kv = "PODNS_HTTP_ADDR=127.0.0.1:" + strconv.Itoa(e2ePodnsHTTPPort)
		}
		env = append(env, kv)
	}
	p := w.start(name, w.podns.netns, env, bin)
	w.waitFor(p, e2eStartTimeout, func() error {
		_, err := w.httpGet(w.podns.netns, e2ePodnsHTTPPort, "/healthz")
		return err
	})
	ctx, cancel := context.WithTimeout(w.ctx, e2eCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", w.podns.netns, bin, "probe")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("podns probe: %v: %s", err, bytes.TrimSpace(out))
	}
	return p
}

// podnsIdle returns a function that waits until podns has no upstream exchange in flight and kube-dns
// has counted every reply podns received since podnsIdle was called: then every query podns sent for
// a lookup (including probes a walk sends after answering) is in kube-dns's counter.
func (w *e2eWorld) podnsIdle(p *proctest.Proc) func() {
	w.t.Helper()
	kubeBase := w.kubeDNSRequests()
	answersBase := w.promSum(w.podns.netns, e2ePodnsHTTPPort, "podns_upstream_answers_total")
	return func() {
		w.t.Helper()
		w.waitFor(p, e2eStartTimeout, func() error {
			if n := w.promSum(w.podns.netns, e2ePodnsHTTPPort, "podns_upstream_in_flight"); n != 0 {
				return fmt.Errorf("podns has %v upstream exchanges in flight", n)
			}
			answers := w.promSum(w.podns.netns, e2ePodnsHTTPPort, "podns_upstream_answers_total") - answersBase
			if counted := w.kubeDNSRequests() - kubeBase; counted < answers {
				return fmt.Errorf("kube-dns counted %v requests, podns got %v replies", counted, answers)
			}
			return nil
		})
	}
}

// logPodnsCounters logs what podns itself counted of the pass, beside kube-dns's figures.
func (w *e2eWorld) logPodnsCounters(p *proctest.Proc) {
	w.t.Helper()
	var parts []string
	for _, m := range []string{"podns_upstream_queries_total", "podns_search_walks_total",
		"podns_search_upstream_queries_total", "podns_search_clusterfirst_queries_total",
		"podns_search_cut_hits_total", "podns_upstream_hedges_total", "podns_upstream_resends_total"} {
		parts = append(parts, fmt.Sprintf("%s %.0f", m, w.promSum(w.podns.netns, e2ePodnsHTTPPort, m)))
	}
	w.t.Logf("podns's own counters after its pass: %s", strings.Join(parts, ", "))
}

// promSum reads a Prometheus text exposition from a port of a namespace's loopback and adds up every
// series of one metric (0 when it has none).
func (w *e2eWorld) promSum(ns string, port int, metric string) float64 {
	w.t.Helper()
	body, err := w.httpGet(ns, port, "/metrics")
	if err != nil {
		w.t.Fatalf("reading metrics in %s: %v", ns, err)
	}
	v, err := e2ePromSum(body, metric)
	if err != nil {
		w.t.Fatalf("metrics in %s: %v", ns, err)
	}
	return v
}

// e2ePromSum adds up every series of metric in a Prometheus text exposition.
func e2ePromSum(body, metric string) (float64, error) {
	var total float64
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, metric)
		if !ok || rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue // another metric, or one whose name starts with this one's
		}
		fields := strings.Fields(rest)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %q: %w", line, err)
		}
		total += v
	}
	return total, sc.Err()
}

func TestE2EPromSum(t *testing.T) {
	body := "# HELP coredns_dns_requests_total Counter.\n" +
		"# TYPE coredns_dns_requests_total counter\n" +
		`coredns_dns_requests_total{family="1",proto="udp",server="dns://:53",type="A",view="",zone="."} 7` + "\n" +
		`coredns_dns_requests_total{family="1",proto="tcp",server="dns://:53",type="AAAA",view="",zone="."} 5` + "\n" +
		`coredns_dns_requests_total_other{type="A"} 100` + "\n" +
		"podns_upstream_in_flight 2\n"
	tests := []struct {
		metric string
		want   float64
	}{
		{"coredns_dns_requests_total", 12},
		{"podns_upstream_in_flight", 2},
		{"podns_upstream_answers_total", 0},
	}
	for _, tt := range tests {
		t.Run(tt.metric, func(t *testing.T) {
			got, err := e2ePromSum(body, tt.metric)
			if err != nil || got != tt.want {
				t.Errorf("got %v, %v; want %v, nil", got, err, tt.want)
			}
		})
	}
}
