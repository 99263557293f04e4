package inject

import (
	"errors"
	"fmt"
	"maps"
	"math/big"
	"strconv"
	"strings"
)

// Resources are a container's resource requests and limits by resource name ("cpu", "memory"), each
// a Kubernetes quantity ("50m", "64Mi"), kept as written. Limits come first, as the API writes them.
type Resources struct {
	Limits   map[string]string `json:"limits,omitempty"`
	Requests map[string]string `json:"requests,omitempty"`
}

func (r Resources) clone() Resources {
	return Resources{Limits: maps.Clone(r.Limits), Requests: maps.Clone(r.Requests)}
}

// check: every value is a quantity, and no request of cpu or memory is above its limit (the API
// server refuses such a pod).
func (r Resources) check() error {
	for what, list := range map[string]map[string]string{"limits": r.Limits, "requests": r.Requests} {
		for name, q := range list {
			if err := CheckQuantity(q); err != nil {
				return fmt.Errorf("%s.%s %q: %w", what, name, q, err)
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
		if rq.Cmp(lq) > 0 {
			return fmt.Errorf("%s request %s above its limit %s", name, req, lim)
		}
	}
	return nil
}

// ErrQuantity marks a string that is not a Kubernetes quantity.
var ErrQuantity = errors.New("not a quantity (a number with an optional suffix: m, k, M, G, Ki, Mi, Gi, ... or an exponent e3)")

// CheckQuantity returns an ErrQuantity unless s is a Kubernetes quantity: an optionally signed
// decimal number ("1", "0.5", ".5", "1."; one without digits, as in "Mi", is 0 to the API server
// too) followed by nothing, a decimal SI suffix (n u m k M G T P E), a binary one (Ki Mi Gi Ti Pi Ei)
// or a decimal exponent ("e3", "E-2"). TestQuantity holds it to the API's own parser.
func CheckQuantity(s string) error {
	_, err := parseQuantity(s)
	return err
}

// Powers of the quantity suffixes: of 10 for the decimal ones, of 1024 for the binary ones.
var (
	decimalSuffixes = map[string]int{"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
	binarySuffixes  = map[string]int{"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
)

// maxExponent bounds a decimal exponent: far beyond any CPU or memory amount (an exabyte is e18),
// and small enough that the exact value stays cheap to compute.
const maxExponent = 100

// parseQuantity returns the exact value of a quantity.
func parseQuantity(s string) (*big.Rat, error) {
	if s == "" {
		return nil, ErrQuantity
	}
	num := strings.TrimLeft(s, "+-")
	if len(s)-len(num) > 1 {
		return nil, ErrQuantity
	}
	end := strings.IndexFunc(num, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end < 0 {
		end = len(num)
	}
	whole, frac, _ := strings.Cut(num[:end], ".")
	if strings.Contains(frac, ".") {
		return nil, ErrQuantity
	}
	digits := whole + frac
	if digits == "" {
		digits = "0" // as the API server reads it: "Mi", "." and "-" are quantities, 0
	}
	v, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return nil, ErrQuantity
	}
	exp10, pow1024 := -len(frac), 0
	suffix := num[end:]
	if e, ok := decimalSuffixes[suffix]; ok {
		exp10 += e
	} else if p, ok := binarySuffixes[suffix]; ok {
		pow1024 = p
	} else if len(suffix) > 1 && (suffix[0] == 'e' || suffix[0] == 'E') {
		e, err := strconv.Atoi(suffix[1:])
		if err != nil || e < -maxExponent || e > maxExponent {
			return nil, ErrQuantity
		}
		exp10 += e
	} else {
		return nil, ErrQuantity
	}
	if strings.HasPrefix(s, "-") {
		v.Neg(v)
	}
	r := new(big.Rat).SetInt(v)
	scale := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(exp10))), nil))
	if exp10 < 0 {
		r.Quo(r, scale)
	} else {
		r.Mul(r, scale)
	}
	return r.Mul(r, new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), uint(10*pow1024)))), nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
