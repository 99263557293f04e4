package main

import (
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// probeTimeout is under Kubernetes' default probe timeout of 1 s.
const probeTimeout = 800 * time.Millisecond

// probe asks the first listen address for CH TXT id.server (RFC 4892), which podns answers itself: it
// shows the resolver is up without depending on the cluster DNS, so a DNS outage does not make the
// kubelet restart every sidecar. It returns the exit code.
func probe(cfg config, stderr io.Writer) int {
	addr := netip.MustParseAddrPort(cfg.Listen[0])
	if addr.Addr().IsUnspecified() {
		loop := netip.MustParseAddr("127.0.0.1")
		if addr.Addr().Is6() {
			loop = netip.IPv6Loopback()
		}
		addr = netip.AddrPortFrom(loop, addr.Port())
	}
	m := new(dns.Msg)
	m.SetQuestion("id.server.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	c := &dns.Client{Net: "udp", Timeout: probeTimeout}
	r, _, err := c.Exchange(m, addr.String())
	if err != nil {
		fmt.Fprintf(stderr, "podns probe: no answer from %s: %v\n", addr, err)
		return 1
	}
	if r.Rcode != dns.RcodeSuccess {
		fmt.Fprintf(stderr, "podns probe: %s answered %s\n", addr, dns.RcodeToString[r.Rcode])
		return 1
	}
	return 0
}
