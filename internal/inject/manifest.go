package inject

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Result of injecting one pod (spec) of a manifest.
type Result int

const (
	Injected Result = iota // podns added
	Already                // the pod had podns: unchanged
	OptOut                 // annotated podns.io/inject: "false": unchanged
	Refused                // podns cannot serve the pod (Report.Refusal says why): unchanged
)

func (r Result) String() string {
	return [...]string{"injected", "already has podns", "opted out", "refused"}[r]
}

// Report says what happened to one pod spec of a manifest stream.
type Report struct {
	Doc     int    // the document's index in the stream, from 0
	Object  string // "Deployment web" or "List items[2]: Job migrate"
	Result  Result
	Refusal *Refusal // set when Result is Refused
}

func (r Report) String() string {
	s := fmt.Sprintf("document %d, %s: %s", r.Doc, r.Object, r.Result)
	if r.Refusal != nil {
		s += ": " + r.Refusal.Detail
	}
	return s
}

// ErrManifest marks input that is not a stream of YAML documents.
var ErrManifest = errors.New("manifest")

// separator is a YAML document separator line: "---" at the start of a line, alone or followed by
// blanks and a comment, or by the document's first node.
var separator = regexp.MustCompile(`(?m)^---(?:[ \t].*)?\r?$`)

// chunk is one document of the stream as it was written: its separator line (empty for a first
// document without one) and the text up to the next separator.
type chunk struct{ sep, body string }

func splitStream(in string) []chunk {
	var out []chunk
	locs := separator.FindAllStringIndex(in, -1)
	prev, sep := 0, ""
	for _, l := range locs {
		out = append(out, chunk{sep: sep, body: in[prev:l[0]]})
		sep, prev = in[l[0]:l[1]], l[1]
	}
	return append(out, chunk{sep: sep, body: in[prev:]})
}

// Manifests adds podns to every pod spec of a stream of YAML manifests: Pods, Deployments,
// StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs, CronJobs and PodTemplates, also
// inside a List. A document with no pod to change is written back byte for byte; one that changes is
// re-encoded from its YAML node tree, which keeps key order, comments, quoting, flow style and
// anchors, but not the original indentation (it becomes two spaces, sequences indented under their
// key), blank lines, a "..." document end, nor the comment on the line of a value podns replaces.
func (in *Injector) Manifests(input []byte) ([]byte, []Report, error) {
	var out bytes.Buffer
	var reports []Report
	for i, c := range splitStream(string(input)) {
		text := c.body
		inline := strings.TrimSpace(strings.TrimPrefix(c.sep, "---"))
		if inline != "" && !strings.HasPrefix(inline, "#") {
			text = c.sep + text // "--- kind: ..." : the node starts on the separator line
		}
		doc, err := parseOne(text)
		if err != nil {
			return nil, reports, fmt.Errorf("%w: document %d: %v", ErrManifest, i, err)
		}
		changed := false
		if len(doc.Content) == 1 {
			changed, err = in.object(doc.Content[0], i, "", &reports)
			if err != nil {
				return nil, reports, err
			}
		}
		if !changed {
			out.WriteString(c.sep + c.body)
			continue
		}
		var b bytes.Buffer
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(doc); err != nil {
			return nil, reports, fmt.Errorf("%w: document %d: encoding: %v", ErrManifest, i, err)
		}
		enc.Close()
		switch {
		case c.sep == "":
		case text != c.body: // the separator line held the start of the document
			out.WriteString("---\n")
		default:
			out.WriteString(c.sep + "\n")
		}
		out.Write(b.Bytes())
	}
	return out.Bytes(), reports, nil
}

// parseOne parses the text of one document. More than one would mean a separator this package did not
// see; re-encoding only the first would lose the others, so that is an error.
func parseOne(text string) (*yaml.Node, error) {
	dec := yaml.NewDecoder(strings.NewReader(text))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("a second YAML document where none was expected (its separator not alone at the start of a line?): %v", err)
	}
	return &doc, nil
}

// templatePaths: where each kind keeps its pod template (a mapping with metadata and spec); "" is the
// object itself (a Pod).
var templatePaths = map[string][]string{
	"Pod":                   {},
	"Deployment":            {"spec", "template"},
	"StatefulSet":           {"spec", "template"},
	"DaemonSet":             {"spec", "template"},
	"ReplicaSet":            {"spec", "template"},
	"ReplicationController": {"spec", "template"},
	"Job":                   {"spec", "template"},
	"CronJob":               {"spec", "jobTemplate", "spec", "template"},
	"PodTemplate":           {"template"},
}

// object injects the pod of one object, or of each item of a List; it reports whether it changed.
func (in *Injector) object(n *yaml.Node, doc int, where string, reports *[]Report) (bool, error) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		return false, nil
	}
	kind, name := scalar(lookup(n, "kind")), scalar(lookup(n, "metadata", "name"))
	if items := lookup(n, "items"); strings.HasSuffix(kind, "List") && items != nil && items.Kind == yaml.SequenceNode {
		changed := false
		for i, item := range items.Content {
			c, err := in.object(item, doc, fmt.Sprintf("%s%s items[%d]: ", where, kind, i), reports)
			if err != nil {
				return false, err
			}
			changed = changed || c
		}
		return changed, nil
	}
	tp, ok := templatePaths[kind]
	if !ok {
		return false, nil
	}
	tmpl := lookup(n, tp...)
	spec := lookup(tmpl, "spec")
	if spec == nil || spec.Kind != yaml.MappingNode {
		return false, nil
	}
	rep := Report{Doc: doc, Object: strings.TrimSpace(where + kind + " " + name)}
	ops, err := in.podNode(tmpl, spec)
	var r *Refusal
	switch {
	case errors.As(err, &r):
		rep.Result, rep.Refusal = Refused, r
	case errors.Is(err, errOptedOut):
		rep.Result = OptOut
	case err != nil:
		return false, fmt.Errorf("%w: document %d, %s: %v", ErrManifest, doc, rep.Object, err)
	case len(ops) == 0:
		rep.Result = Already
	}
	*reports = append(*reports, rep)
	if err != nil || len(ops) == 0 {
		return false, nil
	}
	if err := applyYAML(spec, ops); err != nil {
		return false, fmt.Errorf("%w: document %d, %s: %v", ErrManifest, doc, rep.Object, err)
	}
	return true, nil
}

var errOptedOut = errors.New("opted out")

// podNode decodes a pod template's spec node and returns the operations that add podns to it.
func (in *Injector) podNode(tmpl, spec *yaml.Node) ([]Op, error) {
	if a := lookup(tmpl, "metadata", "annotations", Annotation); a != nil && OptedOut(map[string]string{Annotation: scalar(a)}) {
		return nil, errOptedOut
	}
	var v any
	if err := spec.Decode(&v); err != nil {
		return nil, fmt.Errorf("reading the pod spec: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("reading the pod spec: %w", err)
	}
	var ps PodSpec
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, fmt.Errorf("reading the pod spec: %w", err)
	}
	return in.Patch(&ps)
}

func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// lookup follows mapping keys from n; nil when one is missing.
func lookup(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		n = deref(n)
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		_, v := member(n, k)
		if v == nil {
			return nil
		}
		n = v
	}
	return deref(n)
}

// member returns the index of key k's value in mapping n's content, and the value; -1, nil if absent.
func member(n *yaml.Node, k string) (int, *yaml.Node) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == k {
			return i + 1, n.Content[i+1]
		}
	}
	return -1, nil
}

func scalar(n *yaml.Node) string {
	if n == nil || n.Kind != yaml.ScalarNode {
		return ""
	}
	return n.Value
}

// applyYAML applies add operations to a YAML node, as ApplyJSON does to JSON.
func applyYAML(root *yaml.Node, ops []Op) error {
	for _, op := range ops {
		if op.Op != "add" {
			return fmt.Errorf("%w: op %q: only add is supported", ErrPatch, op.Op)
		}
		toks, err := splitPointer(op.Path)
		if err != nil {
			return err
		}
		v, err := valueNode(op.Value)
		if err != nil {
			return fmt.Errorf("%s: %w", op.Path, err)
		}
		if err := addYAML(root, toks, v); err != nil {
			return fmt.Errorf("%s: %w", op.Path, err)
		}
	}
	return nil
}

// insertBefore places a new key before an existing one, where people write it: the init containers
// before the containers.
var insertBefore = map[string]string{"initContainers": "containers"}

func addYAML(n *yaml.Node, toks []string, v *yaml.Node) error {
	n = deref(n)
	tok, last := toks[0], len(toks) == 1
	switch n.Kind {
	case yaml.MappingNode:
		i, child := member(n, tok)
		switch {
		case last && child == nil:
			key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: tok}
			at := len(n.Content)
			if before, ok := insertBefore[tok]; ok {
				if j, _ := member(n, before); j > 0 {
					at = j - 1
				}
			}
			n.Content = append(n.Content[:at], append([]*yaml.Node{key, v}, n.Content[at:]...)...)
			return nil
		case last:
			// Replace the value, keeping the comments above and below it; the one on its line spoke of
			// the value it had ("dnsPolicy: ClusterFirst # the default") and goes with it.
			v.HeadComment, v.FootComment = child.HeadComment, child.FootComment
			n.Content[i] = v
			return nil
		case child == nil:
			return fmt.Errorf("%w: no member %q", ErrPatch, tok)
		}
		return addYAML(child, toks[1:], v)
	case yaml.SequenceNode:
		i, err := arrayIndex(tok, len(n.Content), last)
		if err != nil {
			return err
		}
		if last {
			n.Content = append(n.Content[:i], append([]*yaml.Node{v}, n.Content[i:]...)...)
			return nil
		}
		return addYAML(n.Content[i], toks[1:], v)
	}
	return fmt.Errorf("%w: %q is below a scalar", ErrPatch, tok)
}

// valueNode turns a patch value into a YAML node in block style, keys in the Go types' field order.
func valueNode(v any) (*yaml.Node, error) {
	switch v := v.(type) {
	case nodeValue:
		return clone(v.n), nil
	case []any:
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range v {
			n, err := valueNode(e)
			if err != nil {
				return nil, err
			}
			seq.Content = append(seq.Content, n)
		}
		return seq, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding: %v", ErrPatch, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%w: re-reading %s: %v", ErrPatch, b, err)
	}
	plain(doc.Content[0])
	return doc.Content[0], nil
}

// plain drops the flow and quoting styles of JSON; the encoder still quotes a string that would read
// back as another type ("53", "true").
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}
