package resolver

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podns/podns/resolver/resolvertest"
)

// TestGoResolverAnswers: Go's own resolver (PreferGo), in a pod whose resolv.conf has no search list
// (podns expands names), gets through podns the addresses glibc gets under ClusterFirst, or "no such
// host" where glibc gets none.
func TestGoResolverAnswers(t *testing.T) {
	h := newHarness(t)
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, h.addr) // TCP listens on the same port
	}}
	seen := map[string]bool{}
	for _, tc := range resolvertest.Cases {
		if (tc.Qtype != dns.TypeA && tc.Qtype != dns.TypeAAAA) || seen[tc.Name] {
			continue
		}
		seen[tc.Name] = true
		t.Run(tc.Name, func(t *testing.T) {
			var want []string
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
				_, m := resolvertest.ClusterFirst(h.zones, testSearch, 5, tc.Name, qt)
				for _, rr := range m.Answer {
					switch rr := rr.(type) {
					case *dns.A:
						want = append(want, rr.A.String())
					case *dns.AAAA:
						want = append(want, rr.AAAA.String())
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// The trailing dot: with no search list, Go asks the name as it is, as in a podns pod.
			addrs, err := r.LookupIPAddr(ctx, dns.Fqdn(tc.Name))
			var got []string
			for _, a := range addrs {
				got = append(got, a.IP.String())
			}
			slices.Sort(got)
			slices.Sort(want)
			var dnsErr *net.DNSError
			switch {
			case len(want) == 0 && (err == nil || !errors.As(err, &dnsErr) || !dnsErr.IsNotFound):
				t.Errorf("got %v, %v, want no such host", got, err)
			case len(want) > 0 && (err != nil || !slices.Equal(got, want)):
				t.Errorf("got %v, %v, want %v", got, err, want)
			}
		})
	}
}
