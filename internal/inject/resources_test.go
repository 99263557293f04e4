package inject

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

// TestQuantity: CheckQuantity accepts what the API's own parser accepts and refuses what it refuses,
// and parseQuantity orders values as the API does.
func TestQuantity(t *testing.T) {
	inputs := []string{
		"0", "1", "+1", "-1", "1.5", ".5", "1.", "007", "20m", "1200m", "0.5", "24Mi", "40Mi", "1Gi", "1G",
		"1000M", "1024Ki", "1Ei", "2E", "1e3", "1E3", "1e+3", "1e-3", "1.5e3", "500n", "3u", "12k",
		"", ".", "-", "+-1", "1..2", "1.2.3", "lots", "fast", "1K", "1KI", "1Kib", "1mi", "1e", "1E+",
		"1e3.5", "1Mi3", "1 Mi", " 1", "1m ", "0x10", "1_000", "Mi", "e3", "1e1000",
	}
	for _, s := range inputs {
		t.Run(s, func(t *testing.T) {
			want, wantErr := resource.ParseQuantity(s)
			err := CheckQuantity(s)
			if s == "1e1000" { // beyond maxExponent: refused here, whatever the API makes of it
				if !errors.Is(err, ErrQuantity) {
					t.Errorf("got %v, want ErrQuantity", err)
				}
				return
			}
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("got error %v, want one %v (the API's parser says %v)", err, wantErr != nil, wantErr)
			}
			if err != nil {
				if !errors.Is(err, ErrQuantity) {
					t.Errorf("got %v, want ErrQuantity", err)
				}
				return
			}
			got, _ := parseQuantity(s)
			for _, other := range []string{"0", "1m", "1", "1.5", "1024", "1Ki", "1Mi", "1G", "1Gi", "1E"} {
				o, _ := parseQuantity(other)
				if g, w := got.Cmp(o), want.Cmp(resource.MustParse(other)); g != w {
					t.Errorf("compared with %s: got %d, want %d", other, g, w)
				}
			}
		})
	}
}
