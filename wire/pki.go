package wire

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"slices"
	"time"
)

// Roles a certificate can name. A component's role is the first
// OrganizationalUnit of its certificate's subject and its id the CommonName:
// a node's node_id, an orchestrator's domain_id, a client's name.
const (
	RoleController   = "controller"
	RoleOrchestrator = "orchestrator"
	RoleNode         = "node"
	RoleClient       = "client" // an operator's tool, such as the CLI's raw cast
)

// Identity is who a peer proved to be with its certificate. The zero Identity
// is a peer on a plaintext connection: nobody in particular.
type Identity struct {
	Role string
	ID   string
}

// Authenticated reports whether the identity comes from a verified certificate.
func (id Identity) Authenticated() bool { return id.Role != "" }

func (id Identity) String() string {
	if !id.Authenticated() {
		return "unauthenticated peer"
	}
	return id.Role + " " + id.ID
}

// IdentityOf reads the identity a certificate names.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if len(cert.Subject.OrganizationalUnit) == 0 || cert.Subject.CommonName == "" {
		return Identity{}, fmt.Errorf("certificate %q names no edgeless role (OU) and id (CN)", cert.Subject)
	}
	id := Identity{Role: cert.Subject.OrganizationalUnit[0], ID: cert.Subject.CommonName}
	switch id.Role {
	case RoleController, RoleOrchestrator, RoleNode, RoleClient:
		return id, nil
	}
	return Identity{}, fmt.Errorf("certificate of %q names unknown role %q", id.ID, id.Role)
}

type identityKey struct{}

// PeerIdentity returns the identity of the peer whose request a Mux handler
// serves: the zero Identity on a plaintext connection.
func PeerIdentity(ctx context.Context) Identity {
	id, _ := ctx.Value(identityKey{}).(Identity)
	return id
}

// Credentials are a component's certificate and the CA it trusts: enough to
// serve and dial mutually authenticated TLS. They are immutable and safe for
// concurrent use.
type Credentials struct {
	cert tls.Certificate
	leaf *x509.Certificate
	pool *x509.CertPool
	self Identity
}

// LoadCredentials reads a PEM CA certificate, a PEM certificate and its key.
func LoadCredentials(caPath, certPath, keyPath string) (*Credentials, error) {
	ca, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA certificate: %w", err)
	}
	cert, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read certificate: %w", err)
	}
	key, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read private key: %w", err)
	}
	c, err := NewCredentials(ca, cert, key)
	if err != nil {
		return nil, fmt.Errorf("cannot use %s with %s: %w", certPath, caPath, err)
	}
	return c, nil
}

// LoadRole returns the credentials of a component of role: given, when it is
// not nil, or else read from the three files. It checks that the certificate
// names role.
func LoadRole(role string, given *Credentials, caPath, certPath, keyPath string) (*Credentials, error) {
	c := given
	if c == nil {
		var err error
		if c, err = LoadCredentials(caPath, certPath, keyPath); err != nil {
			return nil, fmt.Errorf("cannot load the %s's TLS credentials (make them with `edgeless cert`, or set tls.enabled = false on a trusted network): %w", role, err)
		}
	}
	if id := c.Identity(); id.Role != role {
		return nil, fmt.Errorf("invalid %s certificate: it is for %s", role, id)
	}
	return c, nil
}

// NewCredentials builds credentials from PEM bytes and checks that the CA
// signed the certificate.
func NewCredentials(caPEM, certPEM, keyPEM []byte) (*Credentials, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no CA certificate in the CA file")
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	leaf := cert.Leaf
	self, err := IdentityOf(leaf)
	if err != nil {
		return nil, err
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("the certificate of %s is not signed by the CA: %w", self, err)
	}
	return &Credentials{cert: cert, leaf: leaf, pool: pool, self: self}, nil
}

// Identity returns the identity the credentials' certificate names.
func (c *Credentials) Identity() Identity { return c.self }

// Pool returns the trusted CA certificates.
func (c *Credentials) Pool() *x509.CertPool { return c.pool }

// Certificate returns the certificate and key, for an HTTPS server.
func (c *Credentials) Certificate() tls.Certificate { return c.cert }

// ServerTLS returns the configuration of a listener that requires a client
// certificate from the trusted CA.
func (c *Credentials) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    c.pool,
	}
}

// ClientTLS returns the configuration of a connection to a peer that must
// prove the expected identity; an empty expect.ID accepts any id of that role.
// Peers are recognised by the identity in their certificate rather than by
// host name, so that nodes may announce any address.
func (c *Credentials) ClientTLS(expect Identity) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{c.cert},
		// Verification is VerifyConnection's: the chain against our CA, then
		// the identity instead of the host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			got, err := c.verifyChain(cs.PeerCertificates, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			if got.Role != expect.Role || (expect.ID != "" && got.ID != expect.ID) {
				return fmt.Errorf("peer is %s, want %s", got, Identity{Role: expect.Role, ID: cmp.Or(expect.ID, "(any)")})
			}
			return nil
		},
	}
}

// VerifyPeer checks a chain presented to us against the CA and returns the
// identity it names.
func (c *Credentials) verifyChain(chain []*x509.Certificate, usage x509.ExtKeyUsage) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, errors.New("peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: c.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return Identity{}, fmt.Errorf("peer certificate not trusted: %w", err)
	}
	return IdentityOf(chain[0])
}

// CA is a certificate authority that issues the certificates of a cluster.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	// PEM holds the CA certificate, the file every component trusts.
	PEM []byte
}

// NewCA creates a self-signed CA named name, valid for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"edgeless"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, PEM: pemBlock("CERTIFICATE", der)}, nil
}

// LoadCA reads a CA certificate and its key from PEM files.
func LoadCA(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA key: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cannot use CA %s: %w", certPath, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || !pair.Leaf.IsCA {
		return nil, fmt.Errorf("cannot use CA %s: not an ECDSA CA certificate", certPath)
	}
	return &CA{cert: pair.Leaf, key: key, PEM: certPEM}, nil
}

// KeyPEM returns the CA's private key in PEM; keep it offline.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(ca.key)
	if err != nil {
		return nil, err
	}
	return pemBlock("EC PRIVATE KEY", der), nil
}

// Issue creates a certificate and key for id, usable as server and client,
// valid for validity. hosts (IP addresses or DNS names) go into the subject
// alternative names, for clients such as curl that check host names.
func (ca *CA) Issue(id Identity, hosts []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	switch id.Role {
	case RoleController, RoleOrchestrator, RoleNode, RoleClient:
	default:
		return nil, nil, fmt.Errorf("cannot issue a certificate for unknown role %q", id.Role)
	}
	if id.ID == "" {
		return nil, nil, errors.New("cannot issue a certificate without an id")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: id.ID, OrganizationalUnit: []string{id.Role}, Organization: []string{"edgeless"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" && !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", kder), nil
}

// Credentials issues a certificate for id and returns it as credentials, for
// components that live in the CA's own process (inabox, tests).
func (ca *CA) Credentials(id Identity, hosts []string) (*Credentials, error) {
	cert, key, err := ca.Issue(id, hosts, 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	return NewCredentials(ca.PEM, cert, key)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
