package wire

import (
	"fmt"
	"net"
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
