//go:build linux

// Package e2e is the namespace end-to-end suite: pods emulated with Linux network namespaces, a
// ClusterIP DNATed to kube-dns, real clients (glibc, musl) resolving through ClusterFirst's resolv.conf
// and through podns, compared answer by answer and measured under UDP loss. Everything is in its
// tests; it needs root and the tools e2eTools lists, and skips without them (fails under
// PODNS_E2E_REQUIRE=1, as CI runs it). PODNS_E2E_FORWARD_DELAY (a duration, for measurements by hand;
// needs dnsdist) holds each answer of the suite's internet that long, as a real kube-dns's forwards
// take.
package e2e
