package spec

import (
	"errors"
	"fmt"
)

// TLS configures a component's mutual TLS: its certificate, its key and the
// CA that signs every component of the cluster (`edgeless cert init` makes
// them all for one machine).
type TLS struct {
	Enabled  bool   `toml:"enabled" comment:"mutual TLS on every connection to and from this component; false trusts the network: plaintext, nobody authenticated"`
	CAPath   string `toml:"ca_path" comment:"PEM certificate of the cluster's CA"`
	CertPath string `toml:"cert_path" comment:"PEM certificate of this component, issued by the CA; it names the component's role and id"`
	KeyPath  string `toml:"key_path" comment:"PEM private key of cert_path"`
}

// DefaultTLS returns TLS on, with the files `edgeless cert init` writes for
// role into ./tls.
func DefaultTLS(role string) TLS {
	return TLS{Enabled: true, CAPath: "tls/ca.pem", CertPath: "tls/" + role + ".pem", KeyPath: "tls/" + role + ".key"}
}

// Validate reports the problems of t, naming keys under prefix.
func (t *TLS) Validate(prefix string) error {
	if !t.Enabled {
		return nil
	}
	var errs []error
	for key, v := range map[string]string{"ca_path": t.CAPath, "cert_path": t.CertPath, "key_path": t.KeyPath} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s%s: must be set when TLS is enabled", prefix, key))
		}
	}
	return errors.Join(errs...)
}
