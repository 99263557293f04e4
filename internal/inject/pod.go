package inject

import "slices"

// The pod spec as injection sees it: only the fields of Kubernetes's core/v1 PodSpec that Patch reads,
// with the API's JSON names. Decoding a pod into these ignores every other field; the change Patch
// returns names only the members it adds, so whatever these types leave out stays in the pod as it
// was. Own types instead of k8s.io/api's: every pod's podns sidecar runs this binary, and those types
// made it 3.6 MB larger and 2.8 MiB more resident when idle (README.md, Deploying).

// DNS policies of a pod (core/v1 DNSPolicy).
const (
	dnsNone    = "None"
	dnsDefault = "Default"
)

// PodSpec holds the fields of a pod spec that Patch reads.
type PodSpec struct {
	HostNetwork     bool                `json:"hostNetwork,omitempty"`
	DNSPolicy       string              `json:"dnsPolicy,omitempty"`
	DNSConfig       *DNSConfig          `json:"dnsConfig,omitempty"`
	SecurityContext *PodSecurityContext `json:"securityContext,omitempty"`
	InitContainers  []Container         `json:"initContainers,omitempty"`
	Containers      []Container         `json:"containers,omitempty"`
}

// Container holds the fields of a container that Patch reads.
type Container struct {
	Name  string          `json:"name"`
	Image string          `json:"image,omitempty"`
	Ports []ContainerPort `json:"ports,omitempty"`
}

// ContainerPort is a port a container declares.
type ContainerPort struct {
	ContainerPort int32 `json:"containerPort"`
}

// DNSConfig is a pod's dnsConfig, whole: Patch writes it back.
type DNSConfig struct {
	Nameservers []string    `json:"nameservers,omitempty"`
	Searches    []string    `json:"searches,omitempty"`
	Options     []DNSOption `json:"options,omitempty"`
}

// DNSOption is a resolv.conf option of a pod's dnsConfig.
type DNSOption struct {
	Name  string  `json:"name,omitempty"`
	Value *string `json:"value,omitempty"`
}

// PodSecurityContext holds the field of a pod's securityContext that Patch reads and adds to.
type PodSecurityContext struct {
	Sysctls []Sysctl `json:"sysctls,omitempty"`
}

// Sysctl is a namespaced kernel parameter set for the pod.
type Sysctl struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// envVar is a container's environment variable with a literal value.
type envVar struct {
	Name  string `json:"name"`
	Value string `json:"value,omitempty"`
}

func (c *DNSConfig) clone() DNSConfig {
	out := DNSConfig{Nameservers: slices.Clone(c.Nameservers), Searches: slices.Clone(c.Searches)}
	for _, o := range c.Options {
		out.Options = append(out.Options, o.clone())
	}
	return out
}

func (o DNSOption) clone() DNSOption {
	if o.Value != nil {
		v := *o.Value
		o.Value = &v
	}
	return o
}
