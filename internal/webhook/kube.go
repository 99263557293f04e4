package webhook

import (
	"bufio"
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
	resp, body, err := get(ctx, req, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
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

// maxResponse bounds the body read from the API server: a Service is a few kB.
const maxResponse = 1 << 20

// get sends req (HTTPS) over a TLS connection of its own and reads the response, whose body it
// returns. HTTP/1.1 written by hand rather than with http.Client: the client's Transport (its
// connection pool, HTTP/2, proxies) added some 480 kB to the binary that every pod's podns sidecar
// runs, for one GET at the webhook's start.
func get(ctx context.Context, req *http.Request, cfg *tls.Config) (*http.Response, []byte, error) {
	d := tls.Dialer{Config: cfg} // the server name to verify is the host of the address
	conn, err := d.DialContext(ctx, "tcp", req.URL.Host)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	// The context bounds the whole exchange: when it ends, reads and writes fail at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	req.Close = true // one request on the connection: "Connection: close"
	if err := req.Write(conn); err != nil {
		return nil, nil, errors.Join(ctx.Err(), err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return nil, nil, errors.Join(ctx.Err(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, nil, errors.Join(ctx.Err(), err)
	}
	return resp, body, nil
}
