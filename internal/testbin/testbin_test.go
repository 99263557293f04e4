package testbin

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPath(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("PODNS_BIN_CACHE", cache)
	tests := []struct{ name, exe string }{
		{CoreDNS, "coredns"},
		{CoreDNSPrev, "coredns"},
		{Etcd, "etcd"},
		{KubeAPIServer, "kube-apiserver"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Path(tt.name); err == nil {
				t.Fatalf("Path(%q) before the build: got no error, want one", tt.name)
			}
			want := filepath.Join(cache, tt.name, tt.exe)
			if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(want, nil, 0o755); err != nil {
				t.Fatal(err)
			}
			got, err := Path(tt.name)
			if err != nil || got != want {
				t.Errorf("Path(%q): got %q, %v, want %q", tt.name, got, err, want)
			}
		})
	}
}
