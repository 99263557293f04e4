package webhook

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// fakeAPI serves GET of one Service as the API server does, to a bearer token.
func fakeAPI(t *testing.T, status int, body string) APIServer {
	t.Helper()
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, `{"kind":"Status","code":401}`, http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/namespaces/kube-system/services/kube-dns" {
			http.Error(w, `{"kind":"Status","code":404}`, http.StatusNotFound)
			return
		}
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(ts.Close)
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.URL, "https://"))
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	return APIServer{Host: host, Port: port, CA: ca, Token: func() ([]byte, error) { return []byte("s3cret\n"), nil }}
}

func TestServiceIPs(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		want    []string
		wantErr string
	}{
		{"dual stack", 200, `{"kind":"Service","spec":{"clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10","fd00::a"]}}`, []string{"10.96.0.10", "fd00::a"}, ""},
		{"clusterIP only", 200, `{"kind":"Service","spec":{"clusterIP":"10.96.0.10"}}`, []string{"10.96.0.10"}, ""},
		{"headless", 200, `{"kind":"Service","spec":{"clusterIP":"None","clusterIPs":["None"]}}`, nil, "no ClusterIP"},
		{"forbidden", 403, `{"kind":"Status","reason":"Forbidden"}`, nil, "403"},
		{"garbage", 200, `{"spec":`, nil, "decoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fakeAPI(t, tt.status, tt.body).ServiceIPs(context.Background(), "kube-system", "kube-dns")
			switch {
			case tt.wantErr == "" && (err != nil || !slices.Equal(got, tt.want)):
				t.Errorf("got %v, %v, want %v", got, err, tt.want)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got %v, %v, want an error containing %q", got, err, tt.wantErr)
			}
		})
	}
}

func TestServiceIPsRefusesAnotherCA(t *testing.T) {
	api := fakeAPI(t, 200, `{"spec":{"clusterIP":"10.96.0.10"}}`)
	api.CA = newTestCert(t, 9).certPEM
	_, err := api.ServiceIPs(context.Background(), "kube-system", "kube-dns")
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Errorf("got %v, want a certificate verification error", err)
	}
	if _, err := (APIServer{}).ServiceIPs(context.Background(), "kube-system", "kube-dns"); err == nil || !strings.Contains(err.Error(), "KUBERNETES_SERVICE_HOST") {
		t.Errorf("outside a cluster: got %v, want an error naming KUBERNETES_SERVICE_HOST", err)
	}
}

// TestServiceIPsContext: an API server that takes the request and never answers holds ServiceIPs
// only until its context ends.
func TestServiceIPsContext(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	}))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { close(release) }) // runs first: the handler returns, then Close
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(ts.URL, "https://"))
	api := APIServer{Host: host, Port: port, CA: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}),
		Token: func() ([]byte, error) { return []byte("s3cret"), nil }}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-entered
		cancel()
	}()
	_, err := api.ServiceIPs(ctx, "kube-system", "kube-dns")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
