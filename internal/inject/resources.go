package inject

import (
	"fmt"
	"maps"
)

// Resources are a container's resource requests and limits by resource name ("cpu", "memory"), each
// a Kubernetes quantity ("50m", "64Mi"). The injected container has them as the API server writes
// them ("0.5" becomes 500m); limits come first, as in the API's own encoding.
type Resources struct {
	Limits   map[string]string `json:"limits,omitempty"`
	Requests map[string]string `json:"requests,omitempty"`
}

func (r Resources) clone() Resources {
	return Resources{Limits: maps.Clone(r.Limits), Requests: maps.Clone(r.Requests)}
}

// canonical returns r with each quantity in the form the API server writes it (canonicalQuantity);
// r must have passed check.
func (r Resources) canonical() Resources {
	c := r.clone()
	for _, list := range []map[string]string{c.Limits, c.Requests} {
		for name, v := range list {
			list[name] = canonicalQuantity(v)
		}
	}
	return c
}

// check: every value is a quantity, and no request of cpu or memory is above its limit (the API
// server refuses such a pod).
func (r Resources) check() error {
	for what, list := range map[string]map[string]string{"limits": r.Limits, "requests": r.Requests} {
		for name, q := range list {
			if err := CheckQuantity(q); err != nil {
				return fmt.Errorf("resources %s.%s %q: %w", what, name, q, err)
			}
		}
	}
	for _, name := range []string{"cpu", "memory"} {
		req, hasReq := r.Requests[name]
		lim, hasLim := r.Limits[name]
		if !hasReq || !hasLim {
			continue
		}
		rq, _ := parseQuantity(req)
		lq, _ := parseQuantity(lim)
		if rq.value().Cmp(lq.value()) > 0 {
			return fmt.Errorf("%s request %s above its limit %s", name, req, lim)
		}
	}
	return nil
}
