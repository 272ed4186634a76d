package wire

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// ParseAddr turns a dataplane or control URL as written in configuration
// files ("http://127.0.0.1:7005", "tcp://[::1]:7005" or "127.0.0.1:7005") into
// the host:port the transport dials or listens on. The scheme is accepted for
// compatibility with EDGELESS files and otherwise ignored.
func ParseAddr(url string) (string, error) {
	s := url
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s = strings.TrimSuffix(s, "/")
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("bad address %q: %w", url, err)
	}
	if port == "" {
		return "", fmt.Errorf("bad address %q: no port", url)
	}
	return net.JoinHostPort(host, port), nil
}

// Addr is an address of configuration, parsed once when it is read: the
// text as written (a URL such as "http://127.0.0.1:7001" or "tcp://host:7002",
// or a bare host:port; see ParseAddr) and the host:port it names. The zero
// Addr is an address not set. Its text form is the text as written, so a
// configuration writes back as it was read.
type Addr struct {
	text, hostPort string
}

// NewAddr parses s as ParseAddr does; an empty s is the zero Addr.
func NewAddr(s string) (Addr, error) {
	if s == "" {
		return Addr{}, nil
	}
	hp, err := ParseAddr(s)
	if err != nil {
		return Addr{}, err
	}
	return Addr{text: s, hostPort: hp}, nil
}

// MustAddr is NewAddr for addresses written in code; it panics on a bad one.
func MustAddr(s string) Addr {
	a, err := NewAddr(s)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return a
}

// HostPort returns the host:port to dial or listen on; "" when a is not set.
func (a Addr) HostPort() string { return a.hostPort }

// Port returns the port of a; "" when a is not set.
func (a Addr) Port() string {
	_, port, _ := net.SplitHostPort(a.hostPort)
	return port
}

// String returns the address as written.
func (a Addr) String() string { return a.text }

// IsZero reports whether a is not set.
func (a Addr) IsZero() bool { return a.text == "" }

// MarshalText returns the address as written.
func (a Addr) MarshalText() ([]byte, error) { return []byte(a.text), nil }

// UnmarshalText parses an address of a configuration file; empty text is an
// address not set.
func (a *Addr) UnmarshalText(b []byte) error {
	v, err := NewAddr(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Announced returns the address others should dial to reach a listener bound
// to addr: addr itself, or, when it binds every interface (0.0.0.0, ::), the
// machine's host name with addr's port, so that a container or host reached
// by name needs no announced URL of its own.
func Announced(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return addr
	}
	name, err := os.Hostname()
	if err != nil || name == "" {
		return addr
	}
	return net.JoinHostPort(name, port)
}
