package examples_test

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// What podns serves, from the defaults in main's config.go.
const (
	podnsListen      = "127.0.0.1:53" // PODNS_LISTEN's default: the address the pod's resolv.conf names
	podnsHTTPPort    = 9153           // port of PODNS_HTTP_ADDR's default ":9153"
	podnsDrain       = 5 * time.Second
	unprivPortSysctl = "net.ipv4.ip_unprivileged_port_start"
)

// podnsHTTPPaths are the HTTP endpoints podns serves (main's http.go).
var podnsHTTPPaths = []string{"/healthz", "/readyz", "/metrics"}

// resolverOptions are the options glibc's resolv.conf parser knows (resolv.conf(5), Debian 12's glibc
// 2.36); anything else is silently ignored by glibc, so it is a typo here.
var resolverOptions = []string{
	"ndots", "timeout", "attempts", "rotate", "edns0", "single-request", "single-request-reopen",
	"no-tld-query", "use-vc", "no-reload", "trust-ad", "no-aaaa", "inet6", "debug",
}

// podnsContainer finds the podns container of a pod: the one whose image is named podns.
// native is true when it is an init container (a native sidecar).
func podnsContainer(pod *corev1.PodSpec) (c *corev1.Container, index int, native bool, err error) {
	var found []*corev1.Container
	for i := range pod.InitContainers {
		if isPodnsImage(pod.InitContainers[i].Image) {
			found, index, native = append(found, &pod.InitContainers[i]), i, true
		}
	}
	for i := range pod.Containers {
		if isPodnsImage(pod.Containers[i].Image) {
			found, index, native = append(found, &pod.Containers[i]), i, false
		}
	}
	if len(found) != 1 {
		return nil, 0, false, fmt.Errorf("want exactly one podns container, found %d", len(found))
	}
	return found[0], index, native, nil
}

// isPodnsImage reports whether an image reference names the podns repository, whatever the registry.
func isPodnsImage(ref string) bool {
	repo, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return path.Base(repo) == "podns"
}

// envVar returns a container's environment variable by name.
func envVar(c *corev1.Container, name string) (corev1.EnvVar, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e, true
		}
	}
	return corev1.EnvVar{}, false
}

// checkPod returns every way pod breaks an invariant podns relies on; none means it is fine.
func checkPod(pod *corev1.PodSpec, img imageFacts) []string {
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }

	c, index, native, err := podnsContainer(pod)
	if err != nil {
		return []string{err.Error()}
	}
	v = append(v, checkDNS(pod)...)
	v = append(v, checkEnv(pod, c)...)
	v = append(v, checkSecurity(pod, c, img)...)
	v = append(v, checkResources(c)...)
	v = append(v, checkProbes(c, img)...)

	// The pod's other containers resolve through podns, so it has to come first.
	if index != 0 {
		bad("podns is container %d of its list, want the first", index)
	}
	if native {
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			bad("native sidecar: init container podns needs restartPolicy: Always")
		}
		if c.StartupProbe == nil {
			bad("native sidecar: podns needs a startupProbe, or the app may start before DNS answers")
		}
	}
	if len(c.Command) > 0 && !slices.Equal(c.Command, img.entrypoint) {
		bad("podns command %q is not the image's ENTRYPOINT %q", c.Command, img.entrypoint)
	}
	if len(c.Args) > 0 {
		bad("podns takes no arguments to serve (configuration is PODNS_* variables), got args %q", c.Args)
	}
	return v
}

// checkDNS: every container of the pod must resolve through podns and nothing else.
func checkDNS(pod *corev1.PodSpec) []string {
	var v []string
	if pod.DNSPolicy != corev1.DNSNone {
		v = append(v, fmt.Sprintf("dnsPolicy is %q, want None", pod.DNSPolicy))
	}
	if pod.HostNetwork {
		v = append(v, "hostNetwork: 127.0.0.1 would be the node's, not podns")
	}
	if pod.DNSConfig == nil {
		return append(v, "no dnsConfig")
	}
	if got, want := pod.DNSConfig.Nameservers, []string{"127.0.0.1"}; !slices.Equal(got, want) {
		v = append(v, fmt.Sprintf("dnsConfig.nameservers: got %v, want %v", got, want))
	}
	if len(pod.DNSConfig.Searches) > 0 {
		v = append(v, fmt.Sprintf("dnsConfig.searches %v: podns expands names itself; a client search list multiplies queries", pod.DNSConfig.Searches))
	}
	for _, o := range pod.DNSConfig.Options {
		if !slices.Contains(resolverOptions, o.Name) {
			v = append(v, fmt.Sprintf("dnsConfig option %q is not a resolv.conf option", o.Name))
		}
		if o.Value != nil {
			if n, err := strconv.Atoi(*o.Value); err != nil || n < 0 {
				v = append(v, fmt.Sprintf("dnsConfig option %s: value %q is not a count", o.Name, *o.Value))
			}
		}
	}
	return v
}

// checkEnv: the namespace, the upstream, and the listen address podns needs in a pod.
func checkEnv(pod *corev1.PodSpec, c *corev1.Container) []string {
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }

	ns, ok := envVar(c, "PODNS_NAMESPACE")
	if !ok || ns.ValueFrom == nil || ns.ValueFrom.FieldRef == nil || ns.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		bad("PODNS_NAMESPACE must come from the downward API (fieldRef metadata.namespace)")
	}
	up, ok := envVar(c, "PODNS_UPSTREAMS")
	switch {
	case !ok || up.Value == "":
		bad("PODNS_UPSTREAMS must name the cluster DNS service (the pod's resolv.conf points at podns itself)")
	default:
		for _, a := range strings.Split(up.Value, ",") {
			if err := checkUpstream(strings.TrimSpace(a)); err != nil {
				bad("PODNS_UPSTREAMS %q: %v", a, err)
			}
		}
	}
	if l, ok := envVar(c, "PODNS_LISTEN"); ok && !slices.ContainsFunc(strings.Split(l.Value, ","), isPodnsListen) {
		bad("PODNS_LISTEN %q does not include %s, the pod's nameserver", l.Value, podnsListen)
	}
	drain := podnsDrain
	if d, ok := envVar(c, "PODNS_DRAIN"); ok {
		var err error
		if drain, err = time.ParseDuration(d.Value); err != nil {
			bad("PODNS_DRAIN %q: %v", d.Value, err)
		}
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	if drain >= time.Duration(grace)*time.Second {
		bad("PODNS_DRAIN %v is not under terminationGracePeriodSeconds %d: the kubelet kills podns mid-drain", drain, grace)
	}
	if m, ok := envVar(c, "GOMEMLIMIT"); ok && m.ValueFrom != nil {
		r := m.ValueFrom.ResourceFieldRef
		if r == nil || r.Resource != "limits.memory" || (r.ContainerName != "" && r.ContainerName != c.Name) {
			bad("GOMEMLIMIT should come from podns's own limits.memory")
		}
	}
	return v
}

// checkUpstream: an upstream must be an IP address (there is no DNS to resolve a name with) and not
// a loopback one (in the pod's network namespace that is podns itself, or nothing).
func checkUpstream(a string) error {
	host := a
	if h, _, err := net.SplitHostPort(a); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("not an IP address: %w", err)
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		return fmt.Errorf("%s is the pod's own loopback", ip)
	}
	return nil
}

func isPodnsListen(a string) bool {
	a = strings.TrimSpace(a)
	return a == podnsListen || a == "127.0.0.1"
}

// checkSecurity: the restrictive securityContext the examples promise, the sysctl that lets a non-root
// podns bind port 53, and a user that matches the image's.
func checkSecurity(pod *corev1.PodSpec, c *corev1.Container, img imageFacts) []string {
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }

	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sysctlOK := false
	for _, s := range psc.Sysctls {
		if s.Name == unprivPortSysctl {
			n, err := strconv.Atoi(s.Value)
			sysctlOK = err == nil && n <= 53
		}
	}
	if !sysctlOK {
		bad("pod securityContext needs sysctl %s=53: a non-root podns cannot bind port 53 without it", unprivPortSysctl)
	}

	v = append(v, checkRestricted(pod)...)

	// podns's own settings, stricter still.
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		bad("podns: readOnlyRootFilesystem must be true")
	}
	uid := firstInt(sc.RunAsUser, psc.RunAsUser)
	switch {
	case uid == nil:
		bad("podns: runAsUser unset; set the image's numeric user %d", img.uid)
	case *uid == 0:
		bad("podns: runAsUser 0")
	case *uid != img.uid:
		bad("podns: runAsUser %d is not the Dockerfile's USER %d", *uid, img.uid)
	}
	return v
}

// checkRestricted: the restricted Pod Security Standard's rules for every container of the pod.
func checkRestricted(pod *corev1.PodSpec) []string {
	var v []string
	bad := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	for _, cc := range slices.Concat(pod.InitContainers, pod.Containers) {
		sc := cc.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			bad("container %s: allowPrivilegeEscalation must be false", cc.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			bad("container %s: privileged", cc.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			bad("container %s: capabilities must drop ALL", cc.Name)
		} else if len(sc.Capabilities.Add) > 0 {
			bad("container %s: adds capabilities %v", cc.Name, sc.Capabilities.Add)
		}
		if !firstTrue(sc.RunAsNonRoot, psc.RunAsNonRoot) {
			bad("container %s: runAsNonRoot must be true", cc.Name)
		}
		if seccompType(sc.SeccompProfile, psc.SeccompProfile) != corev1.SeccompProfileTypeRuntimeDefault {
			bad("container %s: seccompProfile must be RuntimeDefault", cc.Name)
		}
	}
	return v
}

// firstTrue reports the effective value of a container setting that falls back to the pod's.
func firstTrue(container, pod *bool) bool {
	if container != nil {
		return *container
	}
	return pod != nil && *pod
}

func firstInt(container, pod *int64) *int64 {
	if container != nil {
		return container
	}
	return pod
}

func seccompType(container, pod *corev1.SeccompProfile) corev1.SeccompProfileType {
	if container != nil {
		return container.Type
	}
	if pod != nil {
		return pod.Type
	}
	return ""
}

// checkResources: requests and limits for CPU and memory, requests within limits.
func checkResources(c *corev1.Container) []string {
	var v []string
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[r]
		lim, hasLim := c.Resources.Limits[r]
		if !hasReq || req.IsZero() {
			v = append(v, fmt.Sprintf("podns: no %s request", r))
		}
		if !hasLim || lim.IsZero() {
			v = append(v, fmt.Sprintf("podns: no %s limit", r))
		}
		if hasReq && hasLim && req.Cmp(lim) > 0 {
			v = append(v, fmt.Sprintf("podns: %s request %s above its limit %s", r, req.String(), lim.String()))
		}
	}
	return v
}

// checkProbes: every probe must reach something podns serves: its own probe command, or one of its
// HTTP endpoints on the HTTP port, which must listen where the kubelet connects (the pod IP).
func checkProbes(c *corev1.Container, img imageFacts) []string {
	var v []string
	httpPort, httpOnPodIP := podnsHTTPPort, true
	if e, ok := envVar(c, "PODNS_HTTP_ADDR"); ok {
		host, port, err := net.SplitHostPort(e.Value)
		n, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			v = append(v, fmt.Sprintf("PODNS_HTTP_ADDR %q is not host:port", e.Value))
		}
		httpPort, httpOnPodIP = n, host == "" || host == "0.0.0.0" || host == "::"
	}
	probes := map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe}
	for _, name := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
		p := probes[name]
		if p == nil {
			continue
		}
		switch h := p.ProbeHandler; {
		case h.Exec != nil:
			if want := append(slices.Clone(img.entrypoint), "probe"); !slices.Equal(h.Exec.Command, want) {
				v = append(v, fmt.Sprintf("%s: exec %q, want %q (the image has no shell)", name, h.Exec.Command, want))
			}
			if !img.files[img.entrypoint[0]] {
				v = append(v, fmt.Sprintf("%s: %s is not a file the Dockerfile copies into the image", name, img.entrypoint[0]))
			}
		case h.HTTPGet != nil:
			if !slices.Contains(podnsHTTPPaths, h.HTTPGet.Path) {
				v = append(v, fmt.Sprintf("%s: GET %s, podns serves %v", name, h.HTTPGet.Path, podnsHTTPPaths))
			}
			if got := resolvePort(c, h.HTTPGet.Port); got != httpPort {
				v = append(v, fmt.Sprintf("%s: port %s is %d, podns serves HTTP on %d", name, h.HTTPGet.Port.String(), got, httpPort))
			}
			if h.HTTPGet.Host != "" || !httpOnPodIP {
				v = append(v, fmt.Sprintf("%s: the kubelet connects to the pod IP; PODNS_HTTP_ADDR must listen there", name))
			}
			if h.HTTPGet.Scheme != "" && h.HTTPGet.Scheme != corev1.URISchemeHTTP {
				v = append(v, fmt.Sprintf("%s: scheme %s, podns serves plain HTTP", name, h.HTTPGet.Scheme))
			}
		default:
			// tcpSocket and grpc would go to the pod IP, where podns serves no DNS (127.0.0.1 only).
			v = append(v, fmt.Sprintf("%s: only exec [podns probe] or httpGet reach podns", name))
		}
		if p.TimeoutSeconds > 0 && p.TimeoutSeconds < 1 {
			v = append(v, fmt.Sprintf("%s: timeout %d s", name, p.TimeoutSeconds))
		}
	}
	return v
}

// resolvePort turns a probe's port (number or container port name) into a number; 0 if unknown.
func resolvePort(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return 0
}
