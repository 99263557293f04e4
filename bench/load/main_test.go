package main

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// serve starts a UDP server on loopback with handler h and returns its address.
func serve(t *testing.T, h dns.HandlerFunc) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return pc.LocalAddr().(*net.UDPAddr)
}

func reply(w dns.ResponseWriter, r *dns.Msg, rcode int) {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	_ = w.WriteMsg(m)
}

// counts returns the report's figures for one class: queries noerror nxdomain servfail other lost.
func counts(t *testing.T, res []result, class string) string {
	t.Helper()
	var b bytes.Buffer
	report(&b, res)
	for _, l := range strings.Split(b.String(), "\n") {
		f := strings.Split(l, "\t")
		if f[0] == class {
			return strings.Join(f[1:7], " ")
		}
	}
	t.Fatalf("no class %q in the report:\n%s", class, b.String())
	return ""
}

func TestRunCountsByClassAndRcode(t *testing.T) {
	tests := []struct {
		name    string
		mix     string
		handler dns.HandlerFunc
		want    map[string]string // class -> "queries noerror nxdomain servfail other lost"
	}{
		{
			name: "slow names SERVFAIL, fast ones NOERROR",
			mix:  "slow",
			handler: func(w dns.ResponseWriter, r *dns.Msg) {
				rc := dns.RcodeSuccess
				if strings.HasSuffix(r.Question[0].Name, ".slow.test.") {
					rc = dns.RcodeServerFailure
				}
				reply(w, r, rc)
			},
			want: map[string]string{"fast": "190 190 0 0 0 0", "slow": "10 0 0 10 0 0", "all": "200 190 0 10 0 0"},
		},
		{
			name: "an unanswered AAAA of each pair is lost, its A counted",
			mix:  "newpairs",
			handler: func(w dns.ResponseWriter, r *dns.Msg) {
				if r.Question[0].Qtype == dns.TypeA {
					reply(w, r, dns.RcodeNameError)
				}
			},
			want: map[string]string{"new": "400 0 200 0 0 200"},
		},
		{
			name: "a reply with another question or ID is not the answer",
			mix:  "miss",
			handler: func(w dns.ResponseWriter, r *dns.Msg) {
				wrong := r.Copy()
				wrong.Question[0].Name = "other.miss.test."
				reply(w, wrong, dns.RcodeServerFailure)
				wrong = r.Copy()
				wrong.Id++
				reply(w, wrong, dns.RcodeServerFailure)
				reply(w, r, dns.RcodeRefused)
			},
			want: map[string]string{"miss": "200 0 0 0 200 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, tt.handler)
			res, sent, _ := run(addr, mixes[tt.mix], 1000, 200*time.Millisecond, 300*time.Millisecond, 1, "t-")
			if sent != 200 {
				t.Fatalf("got %d lookups sent, want 200", sent)
			}
			for class, want := range tt.want {
				if got := counts(t, res, class); got != want {
					t.Errorf("class %s: got %q, want %q", class, got, want)
				}
			}
		})
	}
}
