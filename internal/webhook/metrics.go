package webhook

import (
	"bufio"
	"fmt"
	"net/http"
	"sort"
	"sync"
)

// metrics are the webhook's counters, written in the Prometheus text format by hand as podns's own
// are (a few counters do not need client_golang).
type metrics struct {
	mu          sync.Mutex        // guards the fields below
	admissions  map[string]uint64 // by result
	refusals    map[string]uint64 // by reason (refused and error results)
	badRequests uint64
	certReloads uint64
	certErrors  uint64
}

func (m *metrics) inc(c *uint64) {
	m.mu.Lock()
	*c++
	m.mu.Unlock()
}

func (m *metrics) admitted(result, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.admissions == nil {
		m.admissions, m.refusals = map[string]uint64{}, map[string]uint64{}
	}
	m.admissions[result]++
	if reason != "" {
		m.refusals[reason]++
	}
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	m := &s.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	labelled := func(name, help, label string, values map[string]uint64) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		keys := make([]string, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(bw, "%s{%s=%q} %d\n", name, label, k, values[k])
		}
	}
	plain := func(name, typ, help string, v uint64) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, typ, name, v)
	}
	labelled("podns_webhook_admissions_total", "Pod admission requests answered, by result (every one is allowed).", "result", m.admissions)
	labelled("podns_webhook_not_injected_total", "Pods allowed without podns because it cannot serve them or they could not be read, by reason.", "reason", m.refusals)
	plain("podns_webhook_bad_requests_total", "counter", "Requests answered with an HTTP error: not an AdmissionReview v1.", m.badRequests)
	plain("podns_webhook_cert_reloads_total", "counter", "Times a changed certificate was loaded.", m.certReloads)
	plain("podns_webhook_cert_errors_total", "counter", "Handshakes that found the certificate files unreadable and kept the previous certificate.", m.certErrors)
	ready := uint64(0)
	if s.Ready() {
		ready = 1
	}
	plain("podns_webhook_ready", "gauge", "1 once the cluster DNS address is known and pods get podns.", ready)
}
