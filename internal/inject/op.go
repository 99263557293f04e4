package inject

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Op is one JSON patch operation (RFC 6902). Patch only ever adds: "add" on an object member creates
// or replaces it (§4.1), on an array index inserts there, and "-" appends.
type Op struct {
	Op    string `json:"op"`
	Path  string `json:"path"` // a JSON pointer (RFC 6901); Patch's keys need no escaping
	Value any    `json:"value"`
}

// ErrPatch marks a patch that does not fit the document it is applied to.
var ErrPatch = errors.New("json patch")

// WithPrefix returns ops with prefix (a JSON pointer such as "/spec") put before each path.
func WithPrefix(ops []Op, prefix string) []Op {
	out := make([]Op, len(ops))
	for i, op := range ops {
		op.Path = prefix + op.Path
		out[i] = op
	}
	return out
}

// splitPointer returns the reference tokens of a JSON pointer (RFC 6901 §3, §4).
func splitPointer(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%w: path %q does not start with /", ErrPatch, p)
	}
	toks := strings.Split(p[1:], "/")
	for i, t := range toks {
		toks[i] = strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
	}
	return toks, nil
}

// ApplyJSON applies ops (add only) to a JSON document and returns the result.
func ApplyJSON(doc []byte, ops []Op) ([]byte, error) {
	var root any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("%w: decoding the document: %v", ErrPatch, err)
	}
	for _, op := range ops {
		if op.Op != "add" {
			return nil, fmt.Errorf("%w: op %q: only add is supported", ErrPatch, op.Op)
		}
		toks, err := splitPointer(op.Path)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(op.Value)
		if err != nil {
			return nil, fmt.Errorf("%w: encoding the value of %s: %v", ErrPatch, op.Path, err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrPatch, err)
		}
		if root, err = addJSON(root, toks, v); err != nil {
			return nil, fmt.Errorf("%s: %w", op.Path, err)
		}
	}
	return json.Marshal(root)
}

func addJSON(node any, toks []string, v any) (any, error) {
	if len(toks) == 0 {
		return v, nil
	}
	tok, last := toks[0], len(toks) == 1
	switch n := node.(type) {
	case map[string]any:
		if last {
			n[tok] = v
			return n, nil
		}
		child, ok := n[tok]
		if !ok {
			return nil, fmt.Errorf("%w: no member %q", ErrPatch, tok)
		}
		c, err := addJSON(child, toks[1:], v)
		n[tok] = c
		return n, err
	case []any:
		i, err := arrayIndex(tok, len(n), last)
		if err != nil {
			return nil, err
		}
		if last {
			return append(n[:i], append([]any{v}, n[i:]...)...), nil
		}
		c, err := addJSON(n[i], toks[1:], v)
		n[i] = c
		return n, err
	}
	return nil, fmt.Errorf("%w: %q is below a scalar", ErrPatch, tok)
}

// arrayIndex parses an array token: an index, or "-" (the end) for the last token of an add.
func arrayIndex(tok string, n int, last bool) (int, error) {
	if tok == "-" && last {
		return n, nil
	}
	i, err := strconv.Atoi(tok)
	max := n - 1
	if last {
		max = n // add may insert at the end
	}
	if err != nil || i < 0 || i > max {
		return 0, fmt.Errorf("%w: index %q out of range (length %d)", ErrPatch, tok, n)
	}
	return i, nil
}
