package e2e

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// e2eCase is a name an application resolves with getaddrinfo.
type e2eCase struct {
	kind string // what the name exercises
	name string
	// want is what glibc returns under ClusterFirst on a healthy network, from testdata/zones: the
	// check that the emulated cluster answers as a real one, before podns is compared with it.
	want string
	// musl is musl's answer when it differs from glibc's; empty when the same.
	musl string
	// truncated marks answers larger than 512 bytes. musl 1.2.3 has no TCP fallback: it keeps the
	// records of a truncated reply, so through podns it must get a non-empty part of want.
	truncated bool
}

// e2eCases lists the names of issue 7: short, cross-namespace, FQDN, external, CNAME, headless
// hostnames, missing, large answers.
func e2eCases() []e2eCase {
	big := e2eAddrs("10.1.0.", 1, 60)
	many := e2eAddrs("192.0.2.", 101, 160)
	return []e2eCase{
		{kind: "short", name: "graylog", want: "10.0.0.7"},
		{kind: "short, A and AAAA", name: "dual", want: "10.0.0.8,fd00::8"},
		{kind: "cross-namespace", name: "db.other", want: "10.0.1.5"},
		{kind: "cross-namespace", name: "kube-dns.kube-system", want: "10.96.0.10"},
		{kind: "cross-namespace with svc", name: "db.other.svc", want: "10.0.1.5"},
		{kind: "service.namespace", name: "graylog.apps", want: "10.0.0.7"},
		{kind: "service.namespace.svc", name: "graylog.apps.svc", want: "10.0.0.7"},
		{kind: "FQDN, 4 dots, searched first", name: "graylog.apps.svc.cluster.local", want: "10.0.0.7"},
		{kind: "FQDN, rooted", name: "graylog.apps.svc.cluster.local.", want: "10.0.0.7"},
		{kind: "FQDN, mixed case", name: "GrayLog.Apps.Svc.Cluster.Local", want: "10.0.0.7"},
		{kind: "external", name: "www.example.com", want: "192.0.2.10,2001:db8::10"},
		{kind: "external, A only", name: "only4.example.com", want: "192.0.2.4"},
		{kind: "external apex", name: "example.com", want: "192.0.2.1"},
		{kind: "external CNAME", name: "alias.example.com", want: "192.0.2.10,2001:db8::10"},
		{kind: "ExternalName CNAME to another zone", name: "ext", want: "192.0.2.10,2001:db8::10"},
		{kind: "headless service", name: "web", want: "10.0.2.10,10.0.2.11"},
		{kind: "headless hostname", name: "web-0.web", want: "10.0.2.10"},
		{kind: "headless hostname, 5 dots, as given first", name: "web-1.web.apps.svc.cluster.local",
			want: "10.0.2.11"},
		{kind: "missing, short", name: "missing", want: "error:EAI_NONAME"},
		{kind: "missing, external", name: "nope.example.com", want: "error:EAI_NONAME"},
		// An empty non-terminal of the cluster zone: one candidate is NODATA, the others NXDOMAIN.
		// glibc reports the NODATA it met; musl reports no name.
		{kind: "empty non-terminal", name: "apps", want: "error:EAI_NODATA", musl: "error:EAI_NONAME"},
		{kind: "large, cluster", name: "big", want: big, truncated: true},
		{kind: "large, external", name: "many.example.com", want: many, truncated: true},
	}
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
	for _, addr := range strings.Split(e2eAddrs("10.1.0.", 1, 60), ",") {
		big = append(big, "A "+addr)
	}
	slices.Sort(big)
	return []e2eDigCase{
		{kind: "SRV, short", name: "_http._tcp.graylog", qtype: "SRV", status: "NOERROR",
			want: []string{"SRV 0 100 9000 graylog.apps.svc.cluster.local."}},
		{kind: "SRV, cross-namespace", name: "_pg._tcp.db.other", qtype: "SRV", status: "NOERROR",
			want: []string{"SRV 0 100 5432 db.other.svc.cluster.local."}},
		{kind: "TXT, external", name: "txt.example.com", qtype: "TXT", status: "NOERROR",
			want: []string{`TXT "v=podns test"`}},
		{kind: "MX, external apex", name: "example.com", qtype: "MX", status: "NOERROR",
			want: []string{"MX 10 mail.example.com."}},
		{kind: "A, large (EDNS)", name: "big", qtype: "A", status: "NOERROR", want: big},
		{kind: "A, headless hostname", name: "web-0.web", qtype: "A", status: "NOERROR",
			want: []string{"A 10.0.2.10"}},
		{kind: "A, missing", name: "missing", qtype: "A", status: "NXDOMAIN"},
		{kind: "A, missing external", name: "nope.example.com", qtype: "A", status: "NXDOMAIN"},
		{kind: "AAAA, NODATA of a short name", name: "graylog", qtype: "AAAA", status: "NOERROR"},
		{kind: "AAAA, short", name: "dual", qtype: "AAAA", status: "NOERROR", want: []string{"AAAA fd00::8"}},
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
	cases := e2eCases()
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	reference := make(map[string]map[string]string)
	for _, client := range clients {
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
	if client == "musl" && c.musl != "" {
		want = c.musl
	}
	if client == "musl" && c.truncated {
		// The emulated kube-dns (Unbound) truncates a 512-byte reply to an empty answer with TC;
		// CoreDNS keeps the records that fit. So ClusterFirst's musl answer here says more about the
		// server than about musl: it is logged, and podns is held to "the records that fit".
		t.Logf("%s (%s): ClusterFirst gave musl %q; podns gave %d of %d addresses",
			c.name, c.kind, cf, e2eCount(viaPodns), e2eCount(want))
		if !e2eSubset(viaPodns, want) || e2eCount(viaPodns) == 0 {
			t.Errorf("%s (%s) via podns: got %q, want a non-empty part of %q", c.name, c.kind, viaPodns, want)
		}
		return
	}
	if cf != want {
		t.Errorf("%s (%s) under ClusterFirst: got %q, want %q (the emulated cluster is wrong)",
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
				t.Errorf("%s under ClusterFirst: got %s %v, want %s %v (the emulated cluster is wrong)",
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
