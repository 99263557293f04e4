//go:build linux

package e2e

import (
	"testing"

	"github.com/miekg/dns"

	"github.com/podns/podns/resolver/resolvertest"
)

// TestE2ECasesCoverResolverCases needs no root: it checks that the end-to-end suite resolves, with real
// clients, every name the resolver's own tests compare with ClusterFirst (resolvertest.Cases), so the
// two lists cannot drift apart. Addresses are asked with getaddrinfo (which asks A and AAAA together)
// or dig; other types with dig.
func TestE2ECasesCoverResolverCases(t *testing.T) {
	byAddress := make(map[string]bool)
	for _, c := range e2eCases() {
		byAddress[c.name] = true
	}
	byDig := make(map[string]bool)
	for _, c := range e2eDigCases() {
		byDig[c.name+"/"+c.qtype] = true
	}
	for _, c := range resolvertest.Cases {
		qtype := dns.TypeToString[c.Qtype]
		covered := byDig[c.Name+"/"+qtype]
		if c.Qtype == dns.TypeA || c.Qtype == dns.TypeAAAA {
			covered = covered || byAddress[c.Name]
		}
		if !covered {
			t.Errorf("resolvertest case %s %s: got no end-to-end case, want one in e2eCases or e2eDigCases",
				c.Name, qtype)
		}
	}
}
