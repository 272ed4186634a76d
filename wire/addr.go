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
