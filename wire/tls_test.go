package wire

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

// pki is a CA and the credentials it issued, for TLS tests.
type pki struct {
	t  *testing.T
	ca *CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	ca, err := NewCA("test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &pki{t: t, ca: ca}
}

func (p *pki) creds(role, id string) *Credentials {
	p.t.Helper()
	c, err := p.ca.Credentials(Identity{Role: role, ID: id}, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	return c
}

type whoReq struct{ S string }

func tlsMux() *Mux {
	mux := &Mux{}
	Method(mux, "test.Echo", func(ctx context.Context, r *whoReq) (*whoReq, error) {
		return &whoReq{S: r.S + " from " + PeerIdentity(ctx).String()}, nil
	})
	Method(mux, "test.Admin", func(context.Context, *Empty) (*Empty, error) { return &Empty{}, nil })
	return mux
}

func TestTLSIdentityAndAuthorization(t *testing.T) {
	p := newPKI(t)
	rec := &recorder{}
	srvCreds := p.creds(RoleNode, "n1")
	s := startServer(t, ServerConfig{
		TLS: srvCreds.ServerTLS(), Handler: rec, Mux: tlsMux(),
		Authorize: func(peer Identity, method string) error {
			if method == "test.Admin" && peer.Role != RoleOrchestrator {
				return errors.New("only the orchestrator")
			}
			return nil
		},
		EventsFrom: func(peer Identity) bool { return peer.Role == RoleNode },
	})

	orcCreds := p.creds(RoleOrchestrator, "d1")
	c := newClient(t, s.Addr(), ClientOptions{TLS: orcCreds.ClientTLS(Identity{Role: RoleNode, ID: "n1"})})
	got, err := Call[whoReq, whoReq](context.Background(), c, "test.Echo", &whoReq{S: "hi"})
	if err != nil || got.S != "hi from orchestrator d1" {
		t.Fatalf("Echo = %+v, %v", got, err)
	}
	if _, err := Call[Empty, Empty](context.Background(), c, "test.Admin", &Empty{}); err != nil {
		t.Fatalf("orchestrator calling test.Admin: %v", err)
	}

	// Another node may send events but not call test.Admin.
	peer := newClient(t, s.Addr(), ClientOptions{TLS: p.creds(RoleNode, "n2").ClientTLS(Identity{Role: RoleNode, ID: "n1"})})
	_, err = Call[Empty, Empty](context.Background(), peer, "test.Admin", &Empty{})
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, `node n2 may not call "test.Admin"`) {
		t.Fatalf("node calling test.Admin: %v", err)
	}
	e := core.Event{Kind: core.KindCast, Payload: []byte("x")}
	if err := peer.SendEvent(&e); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the event", func() bool { return rec.len() == 1 })

	// The orchestrator may not send events: its connection is closed.
	if err := c.SendEvent(&e); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the denial", func() bool { return s.Stats().Denied >= 2 })
	if rec.len() != 1 {
		t.Fatalf("%d events delivered, want 1", rec.len())
	}
}

func TestTLSClientChecksServerIdentity(t *testing.T) {
	p := newPKI(t)
	s := startServer(t, ServerConfig{TLS: p.creds(RoleNode, "n1").ServerTLS(), Mux: tlsMux()})
	c := newClient(t, s.Addr(), ClientOptions{TLS: p.creds(RoleOrchestrator, "d").ClientTLS(Identity{Role: RoleNode, ID: "n9"})})
	_, err := Call[whoReq, whoReq](context.Background(), c, "test.Echo", &whoReq{})
	if err == nil || !strings.Contains(err.Error(), "peer is node n1, want node n9") {
		t.Fatalf("call to the wrong node: %v", err)
	}
}

func TestTLSRefusesStrangers(t *testing.T) {
	p := newPKI(t)
	s := startServer(t, ServerConfig{TLS: p.creds(RoleNode, "n1").ServerTLS(), Mux: tlsMux(), HandshakeTimeout: 200 * time.Millisecond})

	// A certificate from another CA.
	other := newPKI(t).creds(RoleOrchestrator, "d")
	c := newClient(t, s.Addr(), ClientOptions{TLS: other.ClientTLS(Identity{Role: RoleNode})})
	if _, err := Call[whoReq, whoReq](context.Background(), c, "test.Echo", &whoReq{}); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
	// No certificate at all.
	conn, err := tls.Dial("tcp", s.Addr(), &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate could read")
	}
	// Plaintext bytes, then silence: closed at the handshake deadline.
	raw, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var prefix [4]byte
	binary.BigEndian.PutUint32(prefix[:], 60<<20)
	raw.Write(prefix[:])
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("a stalled stranger was not disconnected: %v", err)
	}
	testutil.Eventually(t, 10*time.Second, "the stranger's connection to close", func() bool { return s.Stats().Conns == 0 })
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestTLSBudget checks that partial large frames draw on one budget: once it
// is used up, a further large frame closes its connection instead of
// growing another buffer.
func TestTLSBudget(t *testing.T) {
	p := newPKI(t)
	s := startServer(t, ServerConfig{TLS: p.creds(RoleNode, "n1").ServerTLS(), Handler: &recorder{}, MaxFrame: 8 << 20, MaxBuffered: 10 << 20})
	dial := func() *tls.Conn {
		conn, err := tls.Dial("tcp", s.Addr(), p.creds(RoleNode, "n2").ClientTLS(Identity{Role: RoleNode}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		var prefix [4]byte
		binary.BigEndian.PutUint32(prefix[:], 7<<20)
		if _, err := conn.Write(append(prefix[:], make([]byte, 1000)...)); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	dial()
	testutil.Eventually(t, 10*time.Second, "the first large frame to hold budget", func() bool { return atomic.LoadInt64(&s.budget.free) == 3<<20 })
	second := dial()
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := second.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the second large frame was not refused: %v", err)
	}
	if atomic.LoadInt64(&s.budget.free) != 3<<20 {
		t.Fatalf("budget left %d, want %d", s.budget.free, 3<<20)
	}
}

func TestPKIRejectsBadInput(t *testing.T) {
	ca, err := NewCA("x", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Issue(Identity{Role: "root", ID: "x"}, nil, time.Hour); err == nil {
		t.Fatal("issued a certificate for an unknown role")
	}
	if _, _, err := ca.Issue(Identity{Role: RoleNode}, nil, time.Hour); err == nil {
		t.Fatal("issued a certificate without an id")
	}
	other, _ := NewCA("y", time.Hour)
	cert, key, _ := other.Issue(Identity{Role: RoleNode, ID: "n"}, nil, time.Hour)
	if _, err := NewCredentials(ca.PEM, cert, key); err == nil || !strings.Contains(err.Error(), "not signed by the CA") {
		t.Fatalf("credentials from another CA: %v", err)
	}
}

// TestPlaintextBounds: without TLS (gnet), connections past MaxConns are
// closed at once, and so is a connection whose large partial frame would
// exceed the budget.
func TestPlaintextBounds(t *testing.T) {
	s := startServer(t, ServerConfig{Handler: &recorder{}, MaxConns: 2, MaxFrame: 8 << 20, MaxBuffered: 10 << 20})
	var conns []net.Conn
	for i := range 3 {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns = append(conns, c)
		if i < 2 { // the loops open connections in any order: one at a time
			testutil.Eventually(t, 10*time.Second, "the connection to open", func() bool { return s.Stats().Conns == int64(i+1) })
		}
	}
	conns[2].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[2].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the connection past MaxConns was not closed: %v", err)
	}
	send := func(c net.Conn) {
		var prefix [4]byte
		binary.BigEndian.PutUint32(prefix[:], 7<<20)
		if _, err := c.Write(append(prefix[:], make([]byte, 1000)...)); err != nil {
			t.Fatal(err)
		}
	}
	send(conns[0])
	testutil.Eventually(t, 10*time.Second, "the first large frame to hold budget", func() bool { return atomic.LoadInt64(&s.budget.free) == 3<<20 })
	send(conns[1])
	conns[1].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conns[1].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("the second large frame was not refused: %v", err)
	}
	conns[0].Close()
	testutil.Eventually(t, 10*time.Second, "the budget to come back", func() bool { return atomic.LoadInt64(&s.budget.free) == 10<<20 })
}

// TestClientReset: Reset drops the connection at once; the client redials
// after its backoff. (With a backoff of a millisecond the new connection
// can come before the server has seen the old one go, so that the server
// never holds none.)
func TestClientReset(t *testing.T) {
	rec := &recorder{}
	s := startServer(t, ServerConfig{Handler: rec})
	c := newClient(t, s.Addr(), ClientOptions{BackoffMin: 500 * time.Millisecond})
	e := core.Event{Kind: core.KindCast, Payload: []byte("x")}
	if err := c.SendEvent(&e); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "the first event", func() bool { return rec.len() == 1 })
	c.Reset()
	testutil.Eventually(t, 10*time.Second, "the server to see the connection go", func() bool { return s.Stats().Conns == 0 })
	testutil.Eventually(t, 10*time.Second, "a new connection", func() bool { return c.SendEvent(&e) == nil && rec.len() >= 2 })
	if got := c.Stats().Connects; got != 2 {
		t.Fatalf("%d connects, want 2", got)
	}
}
