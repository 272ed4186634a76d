package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"time"
)

// APIClient returns an HTTP client of a controller's API that trusts the CA
// certificates of caPEM (none: the system's) and sends token as a bearer
// token on every request (none: no token).
func APIClient(caPEM []byte, token string, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	var rt http.RoundTripper = tr
	if token != "" {
		rt = bearer{tr, token}
	}
	return &http.Client{Transport: rt, Timeout: timeout}
}

// bearer adds a token to every request.
type bearer struct {
	next  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}
