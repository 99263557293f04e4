// golookup: resolve names with Go's own resolver (net.Resolver{PreferGo: true}, what a CGO_ENABLED=0
// binary uses, as most Go programs in pods are built), and print one line per name in lookup.c's
// format:
//
//	<name> TAB <milliseconds> TAB <addresses, sorted, comma-separated> | error:<EAI code>
//
// An argument "srv:NAME" looks up NAME's SRV records instead, printed as "priority weight port target".
// The end-to-end suite builds it with `go build` and runs it inside a pod namespace, where the Go
// resolver reads the pod's /etc/resolv.conf (search list, ndots, timeouts) as it would in a pod.
//
// Usage: golookup NAME|srv:NAME...
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintf(os.Stderr, "usage: %s NAME|srv:NAME...\n", os.Args[0])
		os.Exit(2)
	}
	r := &net.Resolver{PreferGo: true}
	for _, arg := range os.Args[1:] {
		start := time.Now()
		var result []string
		var err error
		if name, ok := strings.CutPrefix(arg, "srv:"); ok {
			var srvs []*net.SRV
			_, srvs, err = r.LookupSRV(context.Background(), "", "", name)
			for _, s := range srvs {
				result = append(result, fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, s.Target))
			}
		} else {
			var addrs []net.IPAddr
			addrs, err = r.LookupIPAddr(context.Background(), arg)
			for _, a := range addrs {
				result = append(result, a.IP.String())
			}
		}
		ms := float64(time.Since(start)) / float64(time.Millisecond)
		if err != nil {
			fmt.Printf("%s\t%.3f\terror:%s\n", arg, ms, eaiName(err))
			continue
		}
		slices.Sort(result)
		fmt.Printf("%s\t%.3f\t%s\n", arg, ms, strings.Join(slices.Compact(result), ","))
	}
}

// eaiName maps the Go resolver's error to the getaddrinfo code a C library would return for the same
// failure, so the suite compares meanings across clients: Go reports NXDOMAIN and NODATA alike as "no
// such host" (EAI_NONAME), a timeout or SERVFAIL as temporary (EAI_AGAIN).
func eaiName(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "EAI_NONAME"
	case errors.As(err, &dnsErr) && (dnsErr.IsTimeout || dnsErr.IsTemporary):
		return "EAI_AGAIN"
	default:
		return "EAI_FAIL"
	}
}
