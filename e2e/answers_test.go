//go:build linux

package e2e

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// e2eCase is a name an application resolves with getaddrinfo (Go: LookupIPAddr), or, for the Go
// client alone, an SRV name it resolves with LookupSRV.
type e2eCase struct {
	kind string // what the name exercises
	name string
	// want is what glibc returns under ClusterFirst on a healthy network, from the Services and
	// EndpointSlices of cluster_test.go and the external zones: the check that kube-dns answers as
	// issue 15 observed, before podns is compared with it.
	want string
	// differ holds a client's answer ("musl", "go") when it differs from glibc's.
	differ map[string]string
	// srv marks an SRV name, asked by the Go client only ("srv:" prefix to golookup): getaddrinfo
	// never asks SRV, and dig covers it for the others.
	srv bool
	// truncated marks answers larger than 512 bytes. musl 1.2.3 has no TCP fallback: it keeps the
	// records of a truncated reply, so through podns it must get a non-empty part of want.
	truncated bool
}

// e2eCases lists the names of issues 7 and 15: short, cross-namespace, FQDN, external, the
// ExternalName chain, headless members and hostnames, pod-IP names, SRV of named ports, missing
// names, NODATA, large answers.
func e2eCases() []e2eCase {
	big := e2eAddrs("10.244.2.", 1, 60)
	many := e2eAddrs("192.0.2.", 101, 160)
	// An empty non-terminal of the cluster: glibc reports the NODATA it met; musl and Go report no name
	// (Go's "no such host" covers both).
	noName := map[string]string{"musl": "error:EAI_NONAME", "go": "error:EAI_NONAME"}
	return []e2eCase{
		{kind: "short", name: "graylog", want: "10.96.1.7"},
		{kind: "short, A and AAAA (dual-stack Service)", name: "dual", want: "10.96.1.8,fd00:10:96::8"},
		{kind: "cross-namespace", name: "db.other", want: "10.96.2.5"},
		{kind: "cross-namespace", name: "kube-dns.kube-system", want: "10.96.0.10"},
		{kind: "cross-namespace with svc", name: "db.other.svc", want: "10.96.2.5"},
		{kind: "service.namespace", name: "graylog.apps", want: "10.96.1.7"},
		{kind: "service.namespace.svc", name: "graylog.apps.svc", want: "10.96.1.7"},
		{kind: "FQDN, 4 dots, searched first", name: "graylog.apps.svc.cluster.local", want: "10.96.1.7"},
		{kind: "FQDN, rooted", name: "graylog.apps.svc.cluster.local.", want: "10.96.1.7"},
		{kind: "FQDN, mixed case", name: "GrayLog.Apps.Svc.Cluster.Local", want: "10.96.1.7"},
		{kind: "external", name: "www.example.com", want: "192.0.2.10,2001:db8::10"},
		{kind: "external, A only", name: "only4.example.com", want: "192.0.2.4"},
		{kind: "external apex", name: "example.com", want: "192.0.2.1"},
		{kind: "external CNAME", name: "alias.example.com", want: "192.0.2.10,2001:db8::10"},
		{kind: "ExternalName: CNAME to an external name", name: "ext", want: "192.0.2.10,2001:db8::10"},
		{kind: "headless service: every ready endpoint", name: "web", want: "10.244.1.10,10.244.1.11"},
		{kind: "headless hostname", name: "web-0.web", want: "10.244.1.10"},
		{kind: "headless hostname, 5 dots, as given first", name: "web-1.web.apps.svc.cluster.local",
			want: "10.244.1.11"},
		{kind: "pod-IP name (pods insecure)", name: "10-244-1-10.apps.pod", want: "10.244.1.10"},
		{kind: "pod-IP name, FQDN", name: "10-244-1-10.apps.pod.cluster.local", want: "10.244.1.10"},
		{kind: "missing, short", name: "missing", want: "error:EAI_NONAME"},
		{kind: "missing, external", name: "nope.example.com", want: "error:EAI_NONAME"},
		{kind: "missing: no Service com in apps", name: "com.apps.svc.cluster.local", want: "error:EAI_NONAME"},
		{kind: "missing: no Namespace com", name: "com.svc.cluster.local", want: "error:EAI_NONAME"},
		// One candidate is NODATA (the namespace exists), the others NXDOMAIN.
		{kind: "empty non-terminal", name: "apps", want: "error:EAI_NODATA", differ: noName},
		{kind: "NODATA: a Namespace", name: "apps.svc.cluster.local", want: "error:EAI_NODATA", differ: noName},
		{kind: "large, cluster", name: "big", want: big, truncated: true},
		{kind: "large, external", name: "many.example.com", want: many, truncated: true},
		{kind: "SRV of a named port", name: "srv:_http._tcp.graylog", srv: true,
			want: "0 100 9000 graylog.apps.svc.cluster.local."},
		{kind: "SRV of a named port, cross-namespace", name: "srv:_pg._tcp.db.other", srv: true,
			want: "0 100 5432 db.other.svc.cluster.local."},
		{kind: "SRV of a headless Service: one per endpoint hostname", name: "srv:_http._tcp.web", srv: true,
			want: "0 50 80 web-0.web.apps.svc.cluster.local.,0 50 80 web-1.web.apps.svc.cluster.local."},
		{kind: "SRV, missing", name: "srv:_http._tcp.missing", srv: true, want: "error:EAI_NONAME"},
	}
}

// e2eCasesFor returns the cases a client resolves: all but the SRV ones, which only the Go client asks.
func e2eCasesFor(client string) []e2eCase {
	var cases []e2eCase
	for _, c := range e2eCases() {
		if !c.srv || client == "go" {
			cases = append(cases, c)
		}
	}
	return cases
}

// e2eAddrs returns prefix+first ... prefix+last sorted as lookup.c prints them.
func e2eAddrs(prefix string, first, last int) string {
	var addrs []string
	for i := first; i <= last; i++ {
		addrs = append(addrs, prefix+strconv.Itoa(i))
	}
	slices.Sort(addrs)
	return strings.Join(addrs, ",")
}

// e2eDigCase is a question asked with dig: the record types getaddrinfo never asks.
type e2eDigCase struct {
	kind, name, qtype string
	status            string
	want              []string // "TYPE rdata" of the answer records of qtype, sorted
}

func e2eDigCases() []e2eDigCase {
	var big []string
	for _, addr := range strings.Split(e2eAddrs("10.244.2.", 1, 60), ",") {
		big = append(big, "A "+addr)
	}
	slices.Sort(big)
	return []e2eDigCase{
		{kind: "SRV, short", name: "_http._tcp.graylog", qtype: "SRV", status: "NOERROR",
			want: []string{"SRV 0 100 9000 graylog.apps.svc.cluster.local."}},
		{kind: "SRV, cross-namespace", name: "_pg._tcp.db.other", qtype: "SRV", status: "NOERROR",
			want: []string{"SRV 0 100 5432 db.other.svc.cluster.local."}},
		{kind: "SRV, headless: one per endpoint hostname", name: "_http._tcp.web", qtype: "SRV", status: "NOERROR",
			want: []string{"SRV 0 50 80 web-0.web.apps.svc.cluster.local.", "SRV 0 50 80 web-1.web.apps.svc.cluster.local."}},
		{kind: "PTR of a Service's ClusterIP", name: "7.1.96.10.in-addr.arpa", qtype: "PTR", status: "NOERROR",
			want: []string{"PTR graylog.apps.svc.cluster.local."}},
		{kind: "A, pod-IP name", name: "10-244-1-10.apps.pod", qtype: "A", status: "NOERROR",
			want: []string{"A 10.244.1.10"}},
		{kind: "A, no Service com in apps", name: "com.apps.svc.cluster.local", qtype: "A", status: "NXDOMAIN"},
		{kind: "A, NODATA of a Namespace", name: "apps.svc.cluster.local", qtype: "A", status: "NOERROR"},
		{kind: "TXT, external", name: "txt.example.com", qtype: "TXT", status: "NOERROR",
			want: []string{`TXT "v=podns test"`}},
		{kind: "MX, external apex", name: "example.com", qtype: "MX", status: "NOERROR",
			want: []string{"MX 10 mail.example.com."}},
		{kind: "A, large (EDNS)", name: "big", qtype: "A", status: "NOERROR", want: big},
		{kind: "A, headless hostname", name: "web-0.web", qtype: "A", status: "NOERROR",
			want: []string{"A 10.244.1.10"}},
		{kind: "A, missing", name: "missing", qtype: "A", status: "NXDOMAIN"},
		{kind: "A, missing external", name: "nope.example.com", qtype: "A", status: "NXDOMAIN"},
		{kind: "AAAA, NODATA of a short name", name: "graylog", qtype: "AAAA", status: "NOERROR"},
		{kind: "AAAA, short", name: "dual", qtype: "AAAA", status: "NOERROR", want: []string{"AAAA fd00:10:96::8"}},
		{kind: "AAAA, external", name: "www.example.com", qtype: "AAAA", status: "NOERROR",
			want: []string{"AAAA 2001:db8::10"}},
		{kind: "AAAA, external NODATA", name: "only4.example.com", qtype: "AAAA", status: "NOERROR"},
		{kind: "A, ExternalName CNAME", name: "ext", qtype: "A", status: "NOERROR",
			want: []string{"A 192.0.2.10"}},
		{kind: "A, empty non-terminal", name: "apps", qtype: "A", status: "NOERROR"},
	}
}

// testAnswers resolves every case with each client in the ClusterFirst pod and in the podns pod, with
// no loss, and requires the same answers. It returns the answers by resolver and client
// ("podns/musl"), then by name: the reference for the loss phase.
func testAnswers(t *testing.T, w *e2eWorld, clients []e2eClient) map[string]map[string]string {
	reference := make(map[string]map[string]string)
	for _, client := range clients {
		cases := e2eCasesFor(client.name)
		names := make([]string, len(cases))
		for i, c := range cases {
			names[i] = c.name
		}
		cf, err := w.lookup(w.cf, client, names)
		if err != nil {
			t.Fatalf("ClusterFirst: %v", err)
		}
		viaPodns, err := w.lookup(w.podns, client, names)
		if err != nil {
			t.Fatalf("podns: %v", err)
		}
		cfRef, podnsRef := make(map[string]string), make(map[string]string)
		reference["ClusterFirst/"+client.name], reference["podns/"+client.name] = cfRef, podnsRef
		for i, c := range cases {
			cfRef[c.name], podnsRef[c.name] = cf[i].result, viaPodns[i].result
			t.Run(client.name+"/"+c.name, func(t *testing.T) {
				checkAnswer(t, client.name, c, cf[i].result, viaPodns[i].result)
			})
		}
	}
	return reference
}

// checkAnswer compares one getaddrinfo result through podns with ClusterFirst's.
func checkAnswer(t *testing.T, client string, c e2eCase, cf, viaPodns string) {
	t.Helper()
	want := c.want
	if d, ok := c.differ[client]; ok {
		want = d
	}
	if client == "musl" && c.truncated {
		// kube-dns keeps the records that fit 512 bytes and sets TC; musl keeps them, and which ones
		// it gets depends on loadbalance's shuffle and on the reply's size. So ClusterFirst's musl
		// answer is logged, and both are held to "a non-empty part of the records".
		t.Logf("%s (%s): ClusterFirst gave musl %q; podns gave %d of %d addresses",
			c.name, c.kind, cf, e2eCount(viaPodns), e2eCount(want))
		for resolver, got := range map[string]string{"ClusterFirst": cf, "podns": viaPodns} {
			if !e2eSubset(got, want) || e2eCount(got) == 0 {
				t.Errorf("%s (%s) via %s: got %q, want a non-empty part of %q", c.name, c.kind, resolver, got, want)
			}
		}
		return
	}
	if cf != want {
		t.Errorf("%s (%s) under ClusterFirst: got %q, want %q (kube-dns or the test cluster is wrong)",
			c.name, c.kind, cf, want)
	}
	if viaPodns != cf {
		t.Errorf("%s (%s) via podns: got %q, want %q (ClusterFirst's)", c.name, c.kind, viaPodns, cf)
	}
}

// testDigAnswers asks the dig cases in both pods and requires the same status and records; through
// podns, the answer must also lead (by CNAME) to the name ClusterFirst's search found.
func testDigAnswers(t *testing.T, w *e2eWorld) {
	for _, c := range e2eDigCases() {
		t.Run("dig/"+c.name+"/"+c.qtype, func(t *testing.T) {
			cf, err := w.dig(w.cf, c.name, c.qtype)
			if err != nil {
				t.Fatalf("ClusterFirst: %v", err)
			}
			viaPodns, err := w.dig(w.podns, c.name, c.qtype)
			if err != nil {
				t.Fatalf("podns: %v", err)
			}
			if cf.status != c.status || !slices.Equal(cf.records, c.want) {
				t.Errorf("%s under ClusterFirst: got %s %v, want %s %v (kube-dns or the test cluster is wrong)",
					c.kind, cf.status, cf.records, c.status, c.want)
			}
			if viaPodns.status != cf.status || !slices.Equal(viaPodns.records, cf.records) {
				t.Errorf("%s via podns: got %s %v, want %s %v (ClusterFirst's)",
					c.kind, viaPodns.status, viaPodns.records, cf.status, cf.records)
			}
			if len(cf.owners) > 0 && !slices.Contains(viaPodns.owners, cf.owners[0]) {
				t.Errorf("%s via podns: answer owners %v, want them to include %s (the FQDN found)",
					c.kind, viaPodns.owners, cf.owners[0])
			}
		})
	}
}

// e2eCount is the number of addresses in a lookup result (0 for an error).
func e2eCount(result string) int {
	if result == "" || strings.HasPrefix(result, "error:") {
		return 0
	}
	return strings.Count(result, ",") + 1
}

// e2eSubset reports whether every address of part is in whole.
func e2eSubset(part, whole string) bool {
	if strings.HasPrefix(part, "error:") {
		return false
	}
	all := strings.Split(whole, ",")
	for _, addr := range strings.Split(part, ",") {
		if addr != "" && !slices.Contains(all, addr) {
			return false
		}
	}
	return true
}
