package controller

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// TestSniffListener: a connection that sends nothing holds up no other; a
// plain one is handed over with its first byte; a TLS one as a *tls.Conn;
// Close ends the silent one and returns.
func TestSniffListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newSniffListener(ln, &tls.Config{})
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	plain, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	plain.Write([]byte("GET / HTTP/1.1\r\n"))
	c, err := s.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if _, isTLS := c.(*tls.Conn); isTLS {
		t.Fatal("a plain connection was handed over as TLS")
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "GET /" {
		t.Fatalf("read %q, %v; want the first bytes again", got, err)
	}
	c.Close()
	hello, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer hello.Close()
	hello.Write([]byte{tlsHandshake, 3, 1})
	if c, err = s.Accept(); err != nil {
		t.Fatal(err)
	}
	if _, isTLS := c.(*tls.Conn); !isTLS {
		t.Fatalf("a TLS handshake was handed over as %T", c)
	}
	c.Close()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(sniffTime / 2):
		t.Fatal("Close waited for the silent connection")
	}
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("the silent connection is still open")
	}
	if _, err := s.Accept(); err == nil {
		t.Fatal("Accept after Close: no error")
	}
}
