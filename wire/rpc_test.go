package wire

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/testutil"
)

type echoReq struct {
	Text  string
	Times int
}

type echoResp struct {
	Text string
}

// rpcServer starts a server whose Mux has echo, fail, panic and block
// methods; block waits until release is called or its context ends.
func rpcServer(t *testing.T, cfg ServerConfig) (s *Server, release func()) {
	t.Helper()
	released := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	mux := &Mux{}
	Method(mux, "echo", func(_ context.Context, r *echoReq) (*echoResp, error) {
		return &echoResp{Text: strings.Repeat(r.Text, max(r.Times, 1))}, nil
	})
	Method(mux, "fail", func(_ context.Context, r *echoReq) (*echoResp, error) {
		return nil, errors.New("cannot do " + r.Text)
	})
	Method(mux, "panic", func(context.Context, *echoReq) (*echoResp, error) { panic("boom") })
	MethodInline(mux, "quick", func(_ context.Context, r *echoReq) (*echoResp, error) {
		return &echoResp{Text: "quick " + r.Text}, nil
	})
	MethodInline(mux, "quickpanic", func(context.Context, *echoReq) (*echoResp, error) { panic("boom") })
	Method(mux, "block", func(ctx context.Context, _ *echoReq) (*echoResp, error) {
		select {
		case <-released:
			return &echoResp{Text: "released"}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	cfg.Mux = mux
	s = startServer(t, cfg)
	// Registered after startServer, so it runs before the server's Close.
	t.Cleanup(release)
	return s, release
}

func TestCallRoundTrip(t *testing.T) {
	s, _ := rpcServer(t, ServerConfig{})
	c := newClient(t, s.Addr(), ClientOptions{})
	resp, err := Call[echoReq, echoResp](context.Background(), c, "echo", &echoReq{Text: "ab", Times: 3})
	if err != nil || resp.Text != "ababab" {
		t.Fatalf("echo: %+v, %v", resp, err)
	}
	// Counters follow the writes, which may finish after the answer arrived.
	testutil.Eventually(t, 10*time.Second, "server counters", func() bool { st := s.Stats(); return st.FramesIn == 1 && st.FramesOut == 1 })
	testutil.Eventually(t, 10*time.Second, "client counters", func() bool { st := c.Stats(); return st.FramesIn == 1 && st.FramesOut == 1 })
}

func TestCallConcurrent(t *testing.T) {
	s, _ := rpcServer(t, ServerConfig{})
	c := newClient(t, s.Addr(), ClientOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			text := strconv.Itoa(i)
			resp, err := Call[echoReq, echoResp](context.Background(), c, "echo", &echoReq{Text: text})
			if err == nil && resp.Text != text {
				err = errors.New("call " + text + " got " + resp.Text)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestCallErrors(t *testing.T) {
	s, _ := rpcServer(t, ServerConfig{})
	c := newClient(t, s.Addr(), ClientOptions{})
	f := func(method, want string) {
		t.Helper()
		_, err := Call[echoReq, echoResp](context.Background(), c, method, &echoReq{Text: "x"})
		var re *RemoteError
		if !errors.As(err, &re) || re.Method != method || re.Message != want {
			t.Fatalf("%s: %v, want a RemoteError %q", method, err, want)
		}
	}
	f("fail", "cannot do x")
	f("nope", `unknown method "nope"`)
	f("panic", `method "panic" panicked: boom`)

	// A response that does not decode into Resp.
	_, err := Call[echoReq, struct{ Text int }](context.Background(), c, "echo", &echoReq{Text: "x"})
	if err == nil || !strings.Contains(err.Error(), `cannot decode response of "echo"`) {
		t.Fatalf("mismatched response: %v", err)
	}
}

func TestCallTimeoutDropsLateResponse(t *testing.T) {
	s, release := rpcServer(t, ServerConfig{})
	c := newClient(t, s.Addr(), ClientOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := Call[echoReq, echoResp](ctx, c, "block", &echoReq{})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `cannot call "block"`) {
		t.Fatalf("Call: %v, want a deadline error naming the method", err)
	}
	if n := c.pendingCalls(); n != 0 {
		t.Fatalf("%d calls still pending after the timeout", n)
	}
	release()
	testutil.Eventually(t, 10*time.Second, "the late response", func() bool { return c.Stats().Late == 1 })
	// The connection is still good.
	if resp, err := Call[echoReq, echoResp](context.Background(), c, "echo", &echoReq{Text: "y"}); err != nil || resp.Text != "y" {
		t.Fatalf("echo after a late response: %+v, %v", resp, err)
	}
}

func TestCallDefaultTimeout(t *testing.T) {
	s, _ := rpcServer(t, ServerConfig{})
	c := newClient(t, s.Addr(), ClientOptions{RequestTimeout: 50 * time.Millisecond})
	_, err := Call[echoReq, echoResp](context.Background(), c, "block", &echoReq{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call: %v, want context.DeadlineExceeded", err)
	}
}

func TestCallFailsWhenConnectionDrops(t *testing.T) {
	s, _ := rpcServer(t, ServerConfig{})
	c := newClient(t, s.Addr(), ClientOptions{})
	errc := make(chan error, 1)
	go func() {
		_, err := Call[echoReq, echoResp](context.Background(), c, "block", &echoReq{})
		errc <- err
	}()
	testutil.Eventually(t, 10*time.Second, "the call to reach the server", func() bool { return s.Stats().FramesIn == 1 })
	s.Close() // cancels the handler and drops the connection
	if err := <-errc; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Call: %v, want ErrUnavailable", err)
	}
}

func TestServerRefusesRequestsBeyondMax(t *testing.T) {
	s, release := rpcServer(t, ServerConfig{MaxRequests: 1})
	c := newClient(t, s.Addr(), ClientOptions{})
	first := make(chan error, 1)
	go func() {
		_, err := Call[echoReq, echoResp](context.Background(), c, "block", &echoReq{})
		first <- err
	}()
	testutil.Eventually(t, 10*time.Second, "the first call to run", func() bool { return s.Stats().FramesIn == 1 })
	_, err := Call[echoReq, echoResp](context.Background(), c, "echo", &echoReq{})
	var re *RemoteError
	if !errors.As(err, &re) || !strings.Contains(re.Message, "server busy") {
		t.Fatalf("second call: %v, want server busy", err)
	}
	if s.Stats().Refused != 1 {
		t.Fatalf("Refused = %d", s.Stats().Refused)
	}
	release()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
}

// TestInlineMethods: a method registered with MethodInline is answered on
// the connection's reading goroutine, so that it is served while slow
// requests hold every slot of MaxRequests; on gnet and on Go's net package.
func TestInlineMethods(t *testing.T) {
	for _, useNet := range []bool{false, true} {
		t.Run("net="+strconv.FormatBool(useNet), func(t *testing.T) {
			s, release := rpcServer(t, ServerConfig{MaxRequests: 1, Net: useNet})
			c := newClient(t, s.Addr(), ClientOptions{})
			first := make(chan error, 1)
			go func() {
				_, err := Call[echoReq, echoResp](context.Background(), c, "block", &echoReq{})
				first <- err
			}()
			testutil.Eventually(t, 10*time.Second, "the slow call to run", func() bool { return s.Stats().FramesIn == 1 })
			for i := range 20 {
				resp, err := Call[echoReq, echoResp](context.Background(), c, "quick", &echoReq{Text: strconv.Itoa(i)})
				if err != nil || resp.Text != "quick "+strconv.Itoa(i) {
					t.Fatalf("inline call %d while MaxRequests are taken: %+v, %v", i, resp, err)
				}
			}
			_, err := Call[echoReq, echoResp](context.Background(), c, "quickpanic", &echoReq{})
			var re *RemoteError
			if !errors.As(err, &re) || re.Message != `method "quickpanic" panicked: boom` {
				t.Fatalf("panicking inline method: %v", err)
			}
			if _, err := Call[echoReq, echoResp](context.Background(), c, "echo", &echoReq{}); !errors.As(err, &re) || !strings.Contains(re.Message, "server busy") {
				t.Fatalf("a request beyond MaxRequests: %v, want server busy", err)
			}
			release()
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			if st := s.Stats(); st.Refused != 1 {
				t.Fatalf("Refused = %d, want 1", st.Refused)
			}
		})
	}
}

// TestNetServer: a plaintext server on Go's net package (ServerConfig.Net)
// answers requests and takes events as the gnet one does, frames larger
// than its first read buffer included.
func TestNetServer(t *testing.T) {
	rec := &recorder{}
	s, _ := rpcServer(t, ServerConfig{Net: true, Handler: rec})
	c := newClient(t, s.Addr(), ClientOptions{})
	big := strings.Repeat("x", 100<<10)
	resp, err := Call[echoReq, echoResp](context.Background(), c, "echo", &echoReq{Text: big, Times: 2})
	if err != nil || resp.Text != big+big {
		t.Fatalf("echo of %d bytes: %v", len(big), err)
	}
	for i := range 1000 {
		e := testEvent(core.KindCast, uint64(i), 1, []byte(strconv.Itoa(i)))
		if err := c.SendEvent(&e); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "1000 events", func() bool { return rec.len() == 1000 })
	for i, e := range rec.snapshot() {
		if string(e.Payload) != strconv.Itoa(i) {
			t.Fatalf("event %d has payload %q", i, e.Payload)
		}
	}
}

func TestMethodRegisteredTwicePanics(t *testing.T) {
	m := &Mux{}
	fn := func(context.Context, *echoReq) (*echoResp, error) { return nil, nil }
	Method(m, "x", fn)
	defer func() {
		if r := recover(); r == nil {
			t.Fatal("no panic")
		}
	}()
	Method(m, "x", fn)
}
