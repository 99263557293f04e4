package resolver

import (
	"slices"
	"testing"

	"github.com/miekg/dns"
)

func TestCandidates(t *testing.T) {
	s := newSearcher(testSearch, 5, "cluster.local", []string{"corp.example"})
	tests := []struct {
		name string
		want []string
	}{
		{"graylog.", []string{"graylog.apps.svc.cluster.local.", "graylog.svc.cluster.local.", "graylog.cluster.local.", "graylog."}},
		{"db.other.", []string{"db.other.apps.svc.cluster.local.", "db.other.svc.cluster.local.", "db.other.cluster.local.", "db.other."}},
		{"codacy.com.", []string{"codacy.com.apps.svc.cluster.local.", "codacy.com.svc.cluster.local.", "codacy.com.cluster.local.", "codacy.com."}},
		{"a.b.c.d.e.f.", []string{"a.b.c.d.e.f.", "a.b.c.d.e.f.apps.svc.cluster.local.", "a.b.c.d.e.f.svc.cluster.local.", "a.b.c.d.e.f.cluster.local."}},
		{"graylog.apps.svc.cluster.local.", []string{"graylog.apps.svc.cluster.local."}},
		{"cluster.local.", []string{"cluster.local."}},
		{"10.0.0.10.in-addr.arpa.", []string{"10.0.0.10.in-addr.arpa."}},
		{"x.ip6.arpa.", []string{"x.ip6.arpa."}},
		{"host.corp.example.", []string{"host.corp.example."}},
		{"notcorp.example.", []string{"notcorp.example.apps.svc.cluster.local.", "notcorp.example.svc.cluster.local.", "notcorp.example.cluster.local.", "notcorp.example."}},
		{".", []string{"."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.candidates(nil, tt.name)
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			var lw [maxNameWire]byte
			wire := packName(t, tt.name)
			if gotW, want := s.expandsWire(lowerWire(lw[:0], wire)), s.expands(tt.name); gotW != want {
				t.Errorf("expandsWire got %v, expands says %v", gotW, want)
			}
		})
	}
}

func TestCandidatesNdots(t *testing.T) {
	tests := []struct {
		ndots int
		name  string
		first string
	}{
		{1, "graylog.", "graylog.apps.svc.cluster.local."},
		{1, "www.example.com.", "www.example.com."},
		{0, "graylog.", "graylog."},
		{2, "www.example.com.", "www.example.com."},
		{3, "www.example.com.", "www.example.com.apps.svc.cluster.local."},
	}
	for _, tt := range tests {
		s := newSearcher(testSearch, tt.ndots, "cluster.local", nil)
		if got := s.candidates(nil, tt.name)[0]; got != tt.first {
			t.Errorf("ndots %d, %s: first candidate got %s, want %s", tt.ndots, tt.name, got, tt.first)
		}
	}
}

func TestCandidatesTooLong(t *testing.T) {
	s := newSearcher(testSearch, 5, "", nil)
	long := ""
	for len(long) < 240 {
		long += "abcdefghi."
	}
	got := s.candidates(nil, long)
	for _, c := range got {
		if len(c) >= 255 {
			t.Errorf("candidate of %d bytes: over RFC 1035's 255", len(c))
		}
	}
	// 240 bytes: the name itself (24 dots, at least ndots) and only the shortest search domain fit.
	if want := []string{long, long + "cluster.local."}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestSubdomainAsMiekg: subdomain and lastLabel agree with dns.IsSubDomain and dns.Split, escapes and
// case included.
func TestSubdomainAsMiekg(t *testing.T) {
	names := []string{
		".", "local.", "cluster.local.", "Cluster.Local.", "svc.cluster.local.", "apps.svc.cluster.local.",
		"a.apps.svc.cluster.local.", "xcluster.local.", "x.cluster.local.", `a\.cluster.local.`,
		`a\\.cluster.local.`, `a\\\.cluster.local.`, `cluster\.local.`, "com.", "example.com.",
		"www.example.com.", `w\.w.example.com.`, "www.example.com.cluster.local.", `\046.local.`,
	}
	for _, parent := range names {
		for _, child := range names {
			if got, want := subdomain(parent, child), dns.IsSubDomain(parent, child); got != want {
				t.Errorf("subdomain(%q, %q) = %v, want %v", parent, child, got, want)
			}
		}
	}
	for _, name := range names[1:] {
		labels := dns.Split(name)
		if got, want := lastLabel(name), labels[len(labels)-1]; got != want {
			t.Errorf("lastLabel(%q) = %d, want %d", name, got, want)
		}
	}
}
