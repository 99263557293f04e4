package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// APIServer is how to reach the Kubernetes API from inside the cluster: what client-go's in-cluster
// config uses (KUBERNETES_SERVICE_HOST and _PORT, the service account's token and CA).
type APIServer struct {
	Host, Port string
	Token      func() ([]byte, error) // read at each call: bound tokens are rotated by the kubelet
	CA         []byte                 // PEM
}

// apiTimeout bounds one request to the API server.
const apiTimeout = 5 * time.Second

// ServiceIPs returns the ClusterIPs of a Service (both families on a dual-stack cluster) with one GET:
// a dependency on client-go would weigh more than the rest of podns for this one call.
func (a APIServer) ServiceIPs(ctx context.Context, namespace, name string) ([]string, error) {
	if a.Host == "" || a.Port == "" {
		return nil, errors.New("not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (set PODNS_UPSTREAMS)")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(a.CA) {
		return nil, errors.New("the service account CA holds no certificate")
	}
	token, err := a.Token()
	if err != nil {
		return nil, fmt.Errorf("reading the service account token: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	url := fmt.Sprintf("https://%s/api/v1/namespaces/%s/services/%s", net.JoinHostPort(a.Host, a.Port), namespace, name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Accept", "application/json")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("getting service %s/%s: %w", namespace, name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("getting service %s/%s: %w", namespace, name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("getting service %s/%s: %s: %s", namespace, name, resp.Status, strings.TrimSpace(string(body)))
	}
	var svc struct {
		Spec struct {
			ClusterIP  string   `json:"clusterIP"`
			ClusterIPs []string `json:"clusterIPs"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &svc); err != nil {
		return nil, fmt.Errorf("decoding service %s/%s: %w", namespace, name, err)
	}
	ips := svc.Spec.ClusterIPs
	if len(ips) == 0 && svc.Spec.ClusterIP != "" {
		ips = []string{svc.Spec.ClusterIP}
	}
	if len(ips) == 0 || ips[0] == "None" { // a headless Service
		return nil, fmt.Errorf("service %s/%s has no ClusterIP", namespace, name)
	}
	return ips, nil
}
