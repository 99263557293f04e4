package inject

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

// TestQuantity holds quantity.go to the API's own code: CheckQuantity accepts what the API's parser
// accepts, values compare as the API compares them, and canonicalQuantity writes them as the API does.
func TestQuantity(t *testing.T) {
	inputs := []string{
		"0", "1", "+1", "-1", "1.5", ".5", "1.", "007", "20m", "1200m", "0.5", "24Mi", "40Mi", "1Gi", "1G",
		"1000M", "1024Ki", "1Ei", "2E", "1e3", "1E3", "1e+3", "1e-3", "1.5e3", "500n", "3u", "12k",
		"2000m", "1500m", "1000", "100", "0.1n", "0.5n", "1.5Gi", "0.5Gi", "0.5Ki", "1.5Ki", "512Ki",
		"01Ki", "+1Ki", "-1Ki", "-2048Ki", "3Ei", "8Ei", "9Ei", "0.001Ki", "12e1", "1e-12", "0m",
		"00", "-0", "0.0", "1000000k", "123456789012345678", "1234567890123456789", "0.000000001",
		"100Ti", "7Ki", "8Ki", "-0.5", "-1500m", "1.23456789012", "2e2", "100e-2",
		"", ".", "-", "+-1", "1..2", "1.2.3", "lots", "fast", "1K", "1KI", "1Kib", "1mi", "1e", "1E+",
		"1e3.5", "1Mi3", "1 Mi", " 1", "1m ", "0x10", "1_000", "Mi", "e3",
	}
	for _, s := range inputs {
		t.Run(s, func(t *testing.T) {
			want, wantErr := resource.ParseQuantity(s)
			err := CheckQuantity(s)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("got error %v, want one %v (the API's parser says %v)", err, wantErr != nil, wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrQuantity) {
					t.Errorf("got %v, want ErrQuantity", err)
				}
				return
			}
			if got := canonicalQuantity(s); got != want.String() {
				t.Errorf("canonical: got %q, want %q", got, want.String())
			}
			got, _ := parseQuantity(s)
			for _, other := range []string{"0", "1m", "1", "1.5", "1024", "1Ki", "1Mi", "1G", "1Gi", "1E"} {
				o, _ := parseQuantity(other)
				if g, w := got.value().Cmp(o.value()), want.Cmp(resource.MustParse(other)); g != w {
					t.Errorf("compared with %s: got %d, want %d", other, g, w)
				}
			}
		})
	}
	// Beyond maxExponent: refused here, whatever the API makes of it.
	if err := CheckQuantity("1e1000"); !errors.Is(err, ErrQuantity) {
		t.Errorf("1e1000: got %v, want ErrQuantity", err)
	}
}
