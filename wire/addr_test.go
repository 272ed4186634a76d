package wire

import (
	"strings"
	"testing"
)

func TestAddr(t *testing.T) {
	f := func(text, hostPort, port string) {
		t.Helper()
		var a Addr
		if err := a.UnmarshalText([]byte(text)); err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if a.HostPort() != hostPort || a.Port() != port || a.String() != text || a.IsZero() != (text == "") {
			t.Fatalf("%q = host:port %q, port %q, text %q; want %q, %q", text, a.HostPort(), a.Port(), a.String(), hostPort, port)
		}
		if b, _ := a.MarshalText(); string(b) != text {
			t.Fatalf("%q marshals as %q", text, b)
		}
	}
	f("http://127.0.0.1:7001", "127.0.0.1:7001", "7001")
	f("tcp://[::1]:7005/", "[::1]:7005", "7005")
	f("coap://node.example:0", "node.example:0", "0")
	f("127.0.0.1:7002", "127.0.0.1:7002", "7002")
	f("", "", "")

	bad := func(text, want string) {
		t.Helper()
		a := MustAddr("127.0.0.1:1")
		err := a.UnmarshalText([]byte(text))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"`+text+`"`) {
			t.Fatalf("%q: %v, want an error naming the value and %q", text, err, want)
		}
		if a != MustAddr("127.0.0.1:1") {
			t.Fatalf("%q: a failed parse changed the address to %v", text, a)
		}
	}
	bad("http://127.0.0.1", "missing port")
	bad("http://127.0.0.1:", "no port")
	bad("nowhere", "missing port")
}
