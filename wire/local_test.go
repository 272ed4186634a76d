package wire

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/internal/testutil"
)

// localServer starts a TLS server for node n1 whose test.Admin only the
// orchestrator may call, and whose test.Block waits for its context.
func localServer(t *testing.T, p *pki) *Server {
	mux := tlsMux()
	Method(mux, "test.Block", func(ctx context.Context, _ *Empty) (*Empty, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	return startServer(t, ServerConfig{
		TLS: p.creds(RoleNode, "n1").ServerTLS(), Mux: mux,
		Authorize: func(peer Identity, method string) error {
			if method == "test.Admin" && peer.Role != RoleOrchestrator {
				return errors.New("only the orchestrator")
			}
			return nil
		},
	})
}

func TestInProcessCallsAdmitAsTLSWould(t *testing.T) {
	p := newPKI(t)
	s := localServer(t, p)
	ctx := context.Background()

	// The handler sees the identity of the client's certificate, and the
	// server's authorization holds; no connection is made.
	c := newClient(t, s.Addr(), ClientOptions{InProcess: true,
		TLS: p.creds(RoleController, "c").ClientTLS(Identity{Role: RoleNode, ID: "n1"})})
	got, err := Call[whoReq, whoReq](ctx, c, "test.Echo", &whoReq{S: "hi"})
	if err != nil || got.S != "hi from controller c" {
		t.Fatalf("Echo = %+v, %v", got, err)
	}
	var re *RemoteError
	if _, err := Call[Empty, Empty](ctx, c, "test.Admin", &Empty{}); !errors.As(err, &re) ||
		!strings.Contains(re.Message, `controller c may not call "test.Admin"`) {
		t.Fatalf("controller calling test.Admin: %v", err)
	}
	if _, err := Call[Empty, Empty](ctx, c, "test.Nothing", &Empty{}); !errors.As(err, &re) {
		t.Fatalf("unknown method: %v", err)
	}
	if n := c.connects.Load(); n != 0 {
		t.Fatalf("in-process client connected %d times", n)
	}
	// A caller whose types differ from the handler's takes the network,
	// where the codec reconciles them.
	if _, err := Call[Empty, Empty](ctx, c, "test.Echo", &Empty{}); err != nil || c.connects.Load() != 1 {
		t.Fatalf("Echo with other types = %v after %d connections, want an answer over one", err, c.connects.Load())
	}

	// A client expecting another node, one of another CA and one without
	// TLS take the network and fail there as they would anyway.
	wrongID := newClient(t, s.Addr(), ClientOptions{InProcess: true,
		TLS: p.creds(RoleController, "c").ClientTLS(Identity{Role: RoleNode, ID: "n9"})})
	if _, err := Call[whoReq, whoReq](ctx, wrongID, "test.Echo", &whoReq{}); err == nil || !strings.Contains(err.Error(), "peer is node n1, want node n9") {
		t.Fatalf("call to the wrong node: %v", err)
	}
	other := newPKI(t)
	foreign := newClient(t, s.Addr(), ClientOptions{InProcess: true,
		TLS: other.creds(RoleController, "c").ClientTLS(Identity{Role: RoleNode})})
	if _, err := Call[whoReq, whoReq](ctx, foreign, "test.Echo", &whoReq{}); err == nil {
		t.Fatal("a client of another CA was served")
	}
	plain := newClient(t, s.Addr(), ClientOptions{InProcess: true, RequestTimeout: time.Second})
	if _, err := Call[whoReq, whoReq](ctx, plain, "test.Echo", &whoReq{}); err == nil {
		t.Fatal("a plaintext client was served by a TLS server")
	}
	for _, cl := range []*Client{wrongID, foreign, plain} {
		if l := cl.local.Load(); l == nil || l.err == nil {
			t.Fatal("a refused client was admitted in process")
		}
	}
}

func TestInProcessCallEndsWithItsCaller(t *testing.T) {
	p := newPKI(t)
	s := localServer(t, p)
	c := newClient(t, s.Addr(), ClientOptions{InProcess: true,
		TLS: p.creds(RoleController, "c").ClientTLS(Identity{Role: RoleNode, ID: "n1"})})

	// The caller's deadline ends the handler, as the caller's own error.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := Call[Empty, Empty](ctx, c, "test.Block", &Empty{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked call with a deadline: %v", err)
	}

	// Close waits for a call in progress, which its caller's deadline
	// ends, and later calls find no server.
	short := newClient(t, s.Addr(), ClientOptions{InProcess: true, RequestTimeout: 200 * time.Millisecond,
		TLS: p.creds(RoleController, "c").ClientTLS(Identity{Role: RoleNode, ID: "n1"})})
	errc := make(chan error, 1)
	go func() {
		_, err := Call[Empty, Empty](context.Background(), short, "test.Block", &Empty{})
		errc <- err
	}()
	testutil.Eventually(t, 10*time.Second, "the call running", func() bool { return len(s.sem) == 1 })
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("call during Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a call in progress outlived its deadline")
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return once the call ended")
	}
	if _, err := Call[whoReq, whoReq](context.Background(), c, "test.Echo", &whoReq{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call after Close: %v", err)
	}
}
