package webhook

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"sync"

	"github.com/rs/zerolog"
)

// certReloader serves the certificate in a pair of PEM files and follows their changes: at each TLS
// handshake it reads both files and, when their bytes changed, parses them again. Reading two small
// files per handshake costs little (the API server keeps its connections to a webhook open), and
// comparing bytes instead of modification times cannot miss a change written within one clock tick.
// A pair that does not parse (cert-manager mid-rotation, a key not yet matching its certificate) is
// logged, counted, and the previous certificate served until a good pair appears.
type certReloader struct {
	certFile, keyFile string
	read              func(string) ([]byte, error)
	log               zerolog.Logger
	metrics           *metrics

	mu      sync.Mutex // guards the fields below
	certPEM []byte
	keyPEM  []byte
	cert    *tls.Certificate // never nil after newCertReloader
}

func newCertReloader(certFile, keyFile string, read func(string) ([]byte, error), log zerolog.Logger, m *metrics) (*certReloader, error) {
	if certFile == "" || keyFile == "" {
		return nil, fmt.Errorf("webhook: a certificate and a key are needed (PEM files)")
	}
	if read == nil {
		read = os.ReadFile
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, read: read, log: log, metrics: m}
	if _, err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// load reads the files and returns the current certificate, replacing it when the files changed.
func (r *certReloader) load() (*tls.Certificate, error) {
	certPEM, err := r.read(r.certFile)
	if err != nil {
		return nil, fmt.Errorf("reading the webhook certificate: %w", err)
	}
	keyPEM, err := r.read(r.keyFile)
	if err != nil {
		return nil, fmt.Errorf("reading the webhook key: %w", err)
	}
	r.mu.Lock()
	if r.cert != nil && bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM) {
		c := r.cert
		r.mu.Unlock()
		return c, nil
	}
	r.mu.Unlock()
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parsing the webhook certificate and key: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	first := r.cert == nil
	r.certPEM, r.keyPEM, r.cert = certPEM, keyPEM, &c
	if !first {
		r.metrics.inc(&r.metrics.certReloads)
		r.log.Info().Str("cert", r.certFile).Msg("certificate reloaded")
	}
	return &c, nil
}

// get is tls.Config.GetCertificate.
func (r *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c, err := r.load()
	if err == nil {
		return c, nil
	}
	r.metrics.inc(&r.metrics.certErrors)
	r.log.Error().Err(err).Msg("keeping the previous certificate")
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert, nil
}
