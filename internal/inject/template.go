package inject

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/podns/podns/examples"
)

// template is what the native sidecar example adds to its pod, read from examples/native-sidecar.yaml.
// The container is kept as the example's YAML node, so that `podns inject` writes its fields in the
// example's order, and the webhook every field the example has.
type template struct {
	container *yaml.Node // the podns init container, comments removed
	dnsConfig DNSConfig  // nameservers 127.0.0.1 and the resolver options
	sysctl    Sysctl     // net.ipv4.ip_unprivileged_port_start=53
}

// exampleTemplate parses the embedded example.
func exampleTemplate() (template, error) {
	return parseTemplate(examples.NativeSidecar)
}

func parseTemplate(doc []byte) (template, error) {
	var t template
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil || len(root.Content) != 1 {
		return t, fmt.Errorf("reading the native sidecar example: %v", err)
	}
	specNode := lookup(root.Content[0], "spec", "template", "spec")
	var spec PodSpec
	if err := decodeNode(specNode, &spec); err != nil {
		return t, fmt.Errorf("decoding the native sidecar example: %w", err)
	}
	if spec.DNSPolicy != dnsNone || spec.DNSConfig == nil {
		return t, fmt.Errorf("the native sidecar example does not set dnsPolicy None with a dnsConfig")
	}
	t.dnsConfig = spec.DNSConfig.clone()
	psc := lookup(specNode, "securityContext")
	if spec.SecurityContext == nil || psc == nil {
		return t, fmt.Errorf("the native sidecar example has no pod securityContext")
	}
	for _, s := range spec.SecurityContext.Sysctls {
		if s.Name == UnprivilegedPortSysctl {
			t.sysctl = s
		}
	}
	if t.sysctl.Name == "" {
		return t, fmt.Errorf("the native sidecar example does not set the sysctl %s", UnprivilegedPortSysctl)
	}

	inits := lookup(specNode, "initContainers")
	if inits == nil || inits.Kind != yaml.SequenceNode {
		return t, fmt.Errorf("the native sidecar example has no initContainers")
	}
	for _, c := range inits.Content {
		if scalar(lookup(c, "name")) == ContainerName {
			t.container = clone(c)
		}
	}
	if t.container == nil {
		return t, fmt.Errorf("the native sidecar example has no init container %q", ContainerName)
	}
	// The example sets these for the whole pod; the pod podns joins has its own pod-level context, or
	// none, so they go into podns's container (the restricted Pod Security Standard needs both).
	for _, key := range []string{"seccompProfile", "runAsNonRoot"} {
		v := lookup(psc, key)
		if v == nil || lookup(t.container, "securityContext", key) != nil {
			continue
		}
		if err := applyYAML(t.container, []Op{{Op: "add", Path: "/securityContext/" + key, Value: nodeValue{v}}}); err != nil {
			return t, err
		}
	}
	return t, nil
}

// clone deep-copies a node tree (aliases are not followed: the example has none) without comments.
func clone(n *yaml.Node) *yaml.Node {
	c := *n
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = clone(k)
	}
	return &c
}

// nodeValue is a patch value held as a YAML node: JSON for the webhook, the node itself for YAML.
type nodeValue struct{ n *yaml.Node }

func (v nodeValue) MarshalJSON() ([]byte, error) {
	var x any
	if err := v.n.Decode(&x); err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

// decodeNode decodes a YAML node into a Go value through JSON, as the API server would read it.
func decodeNode(n *yaml.Node, into any) error {
	if n == nil {
		return fmt.Errorf("missing")
	}
	b, err := nodeValue{n}.MarshalJSON()
	if err != nil {
		return err
	}
	return json.Unmarshal(b, into)
}

// setScalar sets the value of key in mapping n, adding the key when it is missing.
func setScalar(n *yaml.Node, key, value string) {
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	if i, _ := member(n, key); i >= 0 {
		n.Content[i] = v
		return
	}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

// setEnvNode sets an environment variable of container node c to a literal value.
func setEnvNode(c *yaml.Node, name, value string) error {
	env := lookup(c, "env")
	if env == nil {
		return applyYAML(c, []Op{{Op: "add", Path: "/env", Value: []envVar{{Name: name, Value: value}}}})
	}
	for _, e := range env.Content {
		if scalar(lookup(e, "name")) == name {
			e.Content = nil
			setScalar(e, "name", name)
			setScalar(e, "value", value)
			return nil
		}
	}
	return applyYAML(c, []Op{{Op: "add", Path: "/env/-", Value: envVar{Name: name, Value: value}}})
}
