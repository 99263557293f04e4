package inject

import (
	"errors"
	"math/big"
	"strconv"
	"strings"
)

// Kubernetes resource quantities ("50m", "64Mi", "1e3"), as the API server reads and writes them:
// enough of them for podns's resource options to be checked, compared and written as the API would.
// TestQuantity holds this file to the API's own code.

// ErrQuantity marks a string that is not a Kubernetes quantity.
var ErrQuantity = errors.New("not a quantity (a number with an optional suffix: m, k, M, G, Ki, Mi, Gi, ... or an exponent e3)")

// CheckQuantity returns an ErrQuantity unless s is a Kubernetes quantity: an optionally signed
// decimal number ("1", "0.5", ".5", "1."; one without digits, as in "Mi", is 0 to the API server
// too) followed by nothing, a decimal SI suffix (n u m k M G T P E), a binary one (Ki Mi Gi Ti Pi Ei)
// or a decimal exponent ("e3", "E-2").
func CheckQuantity(s string) error {
	_, err := parseQuantity(s)
	return err
}

// quantityFormat is how a quantity was written, and how the API server writes it back.
type quantityFormat int

const (
	decimalSI       quantityFormat = iota // no suffix or a decimal SI one: 10^exp
	binarySI                              // Ki, Mi, ...: 2^exp
	decimalExponent                       // e3: 10^exp
)

// quantity is a parsed quantity string: ±num.denom × base^exp.
type quantity struct {
	neg        bool
	num, denom string // the digits before and after the point; num without leading zeros, "0" when none
	format     quantityFormat
	exp        int // the power of 10 (of 2 for binarySI) the suffix stands for
}

// Powers of the quantity suffixes: of 10 for the decimal ones, of 2 for the binary ones.
var (
	decimalSuffixes = map[string]int{"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
	binarySuffixes  = map[string]int{"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
)

// maxExponent bounds a decimal exponent: far beyond any CPU or memory amount (an exabyte is e18),
// and small enough that the exact value stays cheap to compute.
const maxExponent = 100

func parseQuantity(s string) (quantity, error) {
	var q quantity
	if s == "" {
		return q, ErrQuantity
	}
	rest := s
	switch rest[0] {
	case '-':
		q.neg, rest = true, rest[1:]
	case '+':
		rest = rest[1:]
	}
	digits := func() string {
		i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if i < 0 {
			i = len(rest)
		}
		d := rest[:i]
		rest = rest[i:]
		return d
	}
	q.num = strings.TrimLeft(digits(), "0")
	if q.num == "" {
		q.num = "0" // as the API server reads it: "Mi", "." and "-" are quantities, 0
	}
	if strings.HasPrefix(rest, ".") {
		rest = rest[1:]
		q.denom = digits()
	}
	var ok bool
	if q.exp, ok = decimalSuffixes[rest]; ok {
		q.format = decimalSI
	} else if q.exp, ok = binarySuffixes[rest]; ok {
		q.format = binarySI
	} else if len(rest) > 1 && (rest[0] == 'e' || rest[0] == 'E') {
		e, err := strconv.Atoi(rest[1:])
		if err != nil || e < -maxExponent || e > maxExponent {
			return q, ErrQuantity
		}
		q.format, q.exp = decimalExponent, e
	} else {
		return q, ErrQuantity
	}
	return q, nil
}

// mantissa is num and denom as one integer: the value is mantissa × 10^-len(denom) × base^exp.
func (q quantity) mantissa() *big.Int {
	m, _ := new(big.Int).SetString(q.num+q.denom, 10) // digits only, never empty
	if q.neg {
		m.Neg(m)
	}
	return m
}

// value is the exact value of q.
func (q quantity) value() *big.Rat {
	v := new(big.Rat).SetFrac(q.mantissa(), pow(10, len(q.denom)))
	switch {
	case q.format == binarySI:
		v.Mul(v, new(big.Rat).SetInt(pow(2, q.exp)))
	case q.exp >= 0:
		v.Mul(v, new(big.Rat).SetInt(pow(10, q.exp)))
	default:
		v.Quo(v, new(big.Rat).SetInt(pow(10, -q.exp)))
	}
	return v
}

func pow(base, exp int) *big.Int {
	return new(big.Int).Exp(big.NewInt(int64(base)), big.NewInt(int64(exp)), nil)
}

// canonicalQuantity returns quantity s as the API server writes it back (s must parse): the string
// itself when the API keeps it, else the value, rounded up to a multiple of 1n, as the shortest
// integer with a suffix of s's kind ("0.5" is 500m, "2000m" 2, "1024Mi" 1Gi, "1.5e3" 1500).
func canonicalQuantity(s string) string {
	q, _ := parseQuantity(s)
	if s == "0" || q.keptAsWritten() {
		return s
	}
	v := q.value()
	// Round away from zero to a multiple of 10^-9: who asks for some resource gets some.
	nano := new(big.Rat).Mul(v, new(big.Rat).SetInt(pow(10, 9)))
	n := new(big.Int).Quo(nano.Num(), nano.Denom()) // truncated toward zero
	if !nano.IsInt() {
		n.Add(n, big.NewInt(int64(nano.Sign())))
	}
	v.SetFrac(n, pow(10, 9))
	if v.Sign() == 0 {
		return "0"
	}
	format := q.format
	if format == binarySI {
		// A binary value is at most 2^63-1 (the API's int64); under 1024, or not whole, it is decimal.
		if limit := new(big.Rat).SetInt(new(big.Int).Sub(pow(2, 63), big.NewInt(1))); new(big.Rat).Abs(v).Cmp(limit) > 0 {
			v.Set(limit)
			if q.neg {
				v.Neg(v)
			}
		}
		if new(big.Rat).Abs(v).Cmp(big.NewRat(1024, 1)) < 0 || !v.IsInt() {
			format = decimalSI
		}
	}
	if format == binarySI {
		m, k := removeFactors(new(big.Int).Set(v.Num()), big.NewInt(1024))
		suffix := ""
		for name, e := range binarySuffixes {
			if e == 10*k {
				suffix = name
			}
		}
		return m.String() + suffix
	}
	// v = n × 10^-9; move the factors of 10 into the exponent, then back out to a multiple of 3.
	m, k := removeFactors(n, big.NewInt(10))
	exp := k - 9
	for exp%3 != 0 {
		m.Mul(m, big.NewInt(10))
		exp--
	}
	if format == decimalExponent {
		if exp == 0 {
			return m.String()
		}
		return m.String() + "e" + strconv.Itoa(exp)
	}
	for name, e := range decimalSuffixes {
		if e == exp {
			return m.String() + name
		}
	}
	return s // beyond E (10^18): no suffix says it; written as given
}

// keptAsWritten reports whether the API server writes q back as it was written: a plain integer of
// at most 18 digits at a scale it would choose itself; with a binary suffix, one of a few digits that
// is not a multiple of 8 (which a larger suffix might say).
func (q quantity) keptAsWritten() bool {
	digits := q.num + q.denom
	if q.format == binarySI {
		if q.denom != "" || 15-len(q.num)-q.exp*3/10-1 < 0 {
			return false
		}
		n, _ := new(big.Int).SetString(q.num, 10)
		return new(big.Int).Lsh(n, uint(q.exp)).IsInt64() && n.Bit(0)|n.Bit(1)|n.Bit(2) != 0
	}
	scale := q.exp - len(q.denom)
	return len(digits) <= 18 && scale >= -9 && scale%3 == 0 && !strings.HasSuffix(digits, "000") && digits[0] != '0'
}

// removeFactors divides n by f as often as it divides evenly, and says how often; n is changed.
func removeFactors(n, f *big.Int) (*big.Int, int) {
	times := 0
	q, m := new(big.Int), new(big.Int)
	for n.Sign() != 0 {
		q.QuoRem(n, f, m)
		if m.Sign() != 0 {
			break
		}
		n.Set(q)
		times++
	}
	return n, times
}
