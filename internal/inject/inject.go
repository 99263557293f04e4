// Package inject adds podns to a pod spec as examples/native-sidecar.yaml shows it: an init container
// with restartPolicy Always and a startup probe (a native sidecar, Kubernetes >= 1.29), dnsPolicy None
// with nameserver 127.0.0.1, and the pod sysctl that lets the non-root podns bind port 53.
//
// The change is computed as JSON patch operations (RFC 6902) relative to the pod spec, so that the
// admission webhook sends them as they are and `podns inject` applies the same operations to a YAML
// tree; either way nothing else in the pod is re-encoded. Injecting twice is a no-op: a pod that
// already has podns gets no operations.
package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
)

const (
	// ContainerName is the name of the injected container; a pod with a container of this name, or
	// with a podns image, already has podns.
	ContainerName = "podns"
	// UnprivilegedPortSysctl, set to 53 for the pod, lets the non-root podns bind port 53.
	UnprivilegedPortSysctl = "net.ipv4.ip_unprivileged_port_start"
	// Annotation on a pod (or a pod template): "false" opts it out, "true" opts it in (the webhook
	// also injects pods of namespaces labelled Label=LabelEnabled).
	Annotation = "podns.io/inject"
	// Label on a namespace whose pods the webhook injects, with the value LabelEnabled.
	Label        = "podns.io/inject"
	LabelEnabled = "enabled"
	// loopback is podns's address in the pod: the one nameserver of the pod's resolv.conf.
	loopback = "127.0.0.1"
)

// Options are the values injected into each pod. Zero values take the native sidecar example's.
type Options struct {
	Image         string     // required
	Upstreams     []string   // required: the cluster DNS service addresses, ip or ip:port
	ClusterDomain string     // PODNS_CLUSTER_DOMAIN; "" keeps the example's
	Resources     *Resources // nil keeps the example's (Injector.Resources)
}

// ErrOptions marks invalid Options.
var ErrOptions = errors.New("inject options")

// Refusal says why a pod cannot get podns. The pod is then left as it is.
type Refusal struct {
	Reason string // a short stable word, for metrics: "host-network", "own-nameservers", ...
	Detail string // for people
}

func (r *Refusal) Error() string { return r.Detail }

func refuse(reason, format string, args ...any) *Refusal {
	return &Refusal{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Injector computes the change that adds podns to pod specs. Safe for concurrent use.
type Injector struct {
	t             template  // with the options applied; never changed after New
	containerJSON []byte    // t.container in JSON
	resources     Resources // t.container's
}

// New checks opts and prepares the container from the native sidecar example.
func New(opts Options) (*Injector, error) {
	t, err := exampleTemplate()
	if err != nil {
		return nil, err
	}
	return newInjector(t, opts)
}

func newInjector(t template, opts Options) (*Injector, error) {
	if opts.Image == "" {
		return nil, fmt.Errorf("%w: no image", ErrOptions)
	}
	if len(opts.Upstreams) == 0 {
		return nil, fmt.Errorf("%w: no upstream: the cluster DNS service IP is needed (the pod's resolv.conf points at podns itself)", ErrOptions)
	}
	for _, u := range opts.Upstreams {
		if err := checkUpstream(u); err != nil {
			return nil, fmt.Errorf("%w: upstream %q: %v", ErrOptions, u, err)
		}
	}
	c := t.container
	setScalar(c, "image", opts.Image)
	if err := setEnvNode(c, "PODNS_UPSTREAMS", strings.Join(opts.Upstreams, ",")); err != nil {
		return nil, err
	}
	if opts.ClusterDomain != "" {
		if err := setEnvNode(c, "PODNS_CLUSTER_DOMAIN", opts.ClusterDomain); err != nil {
			return nil, err
		}
	}
	if r := opts.Resources; r != nil {
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrOptions, err)
		}
		// Written as the API server writes them: what podns inject writes is what kubectl shows.
		if err := applyYAML(c, []Op{{Op: "add", Path: "/resources", Value: r.canonical()}}); err != nil {
			return nil, err
		}
	}
	in := &Injector{t: t}
	var err error
	if in.containerJSON, err = (nodeValue{c}).MarshalJSON(); err != nil {
		return nil, fmt.Errorf("encoding the podns container: %w", err)
	}
	var res struct {
		Resources Resources `json:"resources"`
	}
	if err := json.Unmarshal(in.containerJSON, &res); err != nil {
		return nil, fmt.Errorf("reading the podns container's resources: %w", err)
	}
	in.resources = res.Resources
	return in, nil
}

// checkUpstream: an IP address (a pod has no DNS to resolve a name with before podns), not loopback
// (in the pod's network namespace that is podns itself).
func checkUpstream(a string) error {
	host := a
	if h, _, err := net.SplitHostPort(a); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return errors.New("not an IP address")
	}
	if ip.IsLoopback() || ip.IsUnspecified() {
		return errors.New("the pod's own loopback: podns would query itself")
	}
	return nil
}

// Container returns the container New prepared, in JSON (a copy).
func (in *Injector) Container() []byte { return slices.Clone(in.containerJSON) }

// Resources returns the resources of the container New prepared (a copy).
func (in *Injector) Resources() Resources { return in.resources.clone() }

// OptedOut reports whether a pod's annotations opt it out.
func OptedOut(annotations map[string]string) bool { return annotations[Annotation] == "false" }

// Patch returns the JSON patch operations, relative to the pod spec, that add podns to spec: none when
// spec already has podns, and a *Refusal when podns cannot work in that pod. spec is not changed.
func (in *Injector) Patch(spec *PodSpec) ([]Op, error) {
	if has, err := hasPodns(spec); has || err != nil {
		return nil, err
	}
	if err := refusal(spec); err != nil {
		return nil, err
	}
	var ops []Op
	c := nodeValue{in.t.container}
	if len(spec.InitContainers) == 0 {
		ops = append(ops, Op{Op: "add", Path: "/initContainers", Value: []any{c}})
	} else {
		// First: the init containers before it would run without DNS.
		ops = append(ops, Op{Op: "add", Path: "/initContainers/0", Value: c})
	}
	ops = append(ops, Op{Op: "add", Path: "/dnsPolicy", Value: dnsNone})
	ops = append(ops, Op{Op: "add", Path: "/dnsConfig", Value: in.dnsConfig(spec.DNSConfig)})
	switch sc := spec.SecurityContext; {
	case sc == nil:
		ops = append(ops, Op{Op: "add", Path: "/securityContext", Value: PodSecurityContext{Sysctls: []Sysctl{in.t.sysctl}}})
	case len(sc.Sysctls) == 0:
		ops = append(ops, Op{Op: "add", Path: "/securityContext/sysctls", Value: []Sysctl{in.t.sysctl}})
	case !slices.ContainsFunc(sc.Sysctls, func(s Sysctl) bool { return s.Name == UnprivilegedPortSysctl }):
		ops = append(ops, Op{Op: "add", Path: "/securityContext/sysctls/-", Value: in.t.sysctl})
	}
	return ops, nil
}

// dnsConfig is the example's, followed by the options of the pod's own dnsConfig that the example does
// not set (the pod's value wins for none: the example's options are what podns is sized for).
func (in *Injector) dnsConfig(own *DNSConfig) DNSConfig {
	cfg := in.t.dnsConfig.clone()
	if own == nil {
		return cfg
	}
	for _, o := range own.Options {
		if !slices.ContainsFunc(cfg.Options, func(e DNSOption) bool { return e.Name == o.Name }) {
			cfg.Options = append(cfg.Options, o.clone())
		}
	}
	return cfg
}

// hasPodns reports whether spec already carries podns (by container name or image), and refuses a pod
// whose podns the pod's DNS does not point at: that one was changed by hand, and is fixed by hand.
func hasPodns(spec *PodSpec) (bool, error) {
	found := ""
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		if c.Name == ContainerName || isImage(c.Image, "podns") {
			found = c.Name
		}
	}
	if found == "" {
		return false, nil
	}
	if spec.DNSPolicy == dnsNone && spec.DNSConfig != nil && slices.Equal(spec.DNSConfig.Nameservers, []string{loopback}) {
		return true, nil
	}
	return true, refuse("partial", "container %q is podns, but the pod's DNS does not point at it (dnsPolicy %q): fix the pod by hand", found, spec.DNSPolicy)
}

// dnsServerImages are images of DNS servers that a pod may already run as its own resolver.
var dnsServerImages = []string{
	"coredns", "dnsmasq", "unbound", "dnsdist", "knot-resolver", "pdns-recursor",
	"k8s-dns-node-cache", "k8s-dns-dnsmasq-nanny", "k8s-dns-kube-dns",
}

// refusal says why podns cannot serve this pod's DNS, or nil.
func refusal(spec *PodSpec) *Refusal {
	if spec.HostNetwork {
		return refuse("host-network", "hostNetwork pod: 127.0.0.1:53 is the node's, not the pod's")
	}
	switch spec.DNSPolicy {
	case dnsNone:
		var ns []string
		if spec.DNSConfig != nil {
			ns = spec.DNSConfig.Nameservers
		}
		return refuse("own-nameservers", "dnsPolicy None with its own nameservers %v: the pod chose its DNS", ns)
	case dnsDefault:
		// The node's resolver, not the cluster DNS: CoreDNS itself runs so.
		return refuse("dns-policy-default", "dnsPolicy Default: the pod resolves through the node, not the cluster DNS")
	}
	if cfg := spec.DNSConfig; cfg != nil {
		if len(cfg.Nameservers) > 0 {
			return refuse("own-nameservers", "dnsConfig adds nameservers %v: the pod chose its DNS", cfg.Nameservers)
		}
		if len(cfg.Searches) > 0 {
			return refuse("searches", "dnsConfig adds search domains %v: podns searches only the cluster's (set PODNS_SEARCH by hand)", cfg.Searches)
		}
	}
	if spec.SecurityContext != nil {
		for _, s := range spec.SecurityContext.Sysctls {
			if n, err := strconv.Atoi(s.Value); s.Name == UnprivilegedPortSysctl && (err != nil || n > 53) {
				return refuse("sysctl", "the pod sets %s=%s; podns needs 53 or less", s.Name, s.Value)
			}
		}
	}
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		for _, img := range dnsServerImages {
			if isImage(c.Image, img) {
				return refuse("dns-sidecar", "container %q runs %s, a DNS server", c.Name, c.Image)
			}
		}
		for _, p := range c.Ports {
			if p.ContainerPort == 53 {
				return refuse("dns-sidecar", "container %q serves port 53: the pod has its own DNS server", c.Name)
			}
		}
	}
	return nil
}

// isImage reports whether an image reference names repository name (its last path element), whatever
// the registry, tag or digest.
func isImage(ref, name string) bool {
	repo, _, _ := strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return path.Base(repo) == name
}
