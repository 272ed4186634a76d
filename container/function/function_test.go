package function

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/edgeless-go/edgeless/container/guestapi"
)

// host records the host calls it serves, as a node's GuestAPIHost would
// receive them.
type host struct {
	guestapi.UnimplementedGuestAPIHostServer
	mu    sync.Mutex
	calls []string
}

func (h *host) add(format string, args ...any) {
	h.mu.Lock()
	h.calls = append(h.calls, fmt.Sprintf(format, args...))
	h.mu.Unlock()
}

func id(i *guestapi.InstanceId) string { return i.GetNodeId() + "/" + i.GetFunctionId() }

func (h *host) Cast(_ context.Context, e *guestapi.OutputEventData) (*emptypb.Empty, error) {
	h.add("cast %s %s %s", id(e.Originator), e.Alias, e.Msg)
	return &emptypb.Empty{}, nil
}
func (h *host) CastRaw(_ context.Context, e *guestapi.OutputEventDataRaw) (*emptypb.Empty, error) {
	h.add("cast_raw %s %s", id(e.Dst), e.Msg)
	return &emptypb.Empty{}, nil
}
func (h *host) Call(_ context.Context, e *guestapi.OutputEventData) (*guestapi.CallReturn, error) {
	h.add("call %s %s", e.Alias, e.Msg)
	return &guestapi.CallReturn{Type: guestapi.CallRetType_CALL_RET_REPLY, Msg: []byte("42")}, nil
}
func (h *host) CallRaw(_ context.Context, e *guestapi.OutputEventDataRaw) (*guestapi.CallReturn, error) {
	h.add("call_raw %s %s", id(e.Dst), e.Msg)
	return &guestapi.CallReturn{Type: guestapi.CallRetType_CALL_RET_NO_REPLY}, nil
}
func (h *host) TelemetryLog(_ context.Context, e *guestapi.TelemetryLogEvent) (*emptypb.Empty, error) {
	h.add("log %d %s %s", e.LogLevel, e.Target, e.Msg)
	return &emptypb.Empty{}, nil
}
func (h *host) Slf(context.Context, *emptypb.Empty) (*guestapi.InstanceId, error) {
	return &guestapi.InstanceId{NodeId: "n", FunctionId: "f"}, nil
}
func (h *host) DelayedCast(_ context.Context, e *guestapi.DelayedEventData) (*emptypb.Empty, error) {
	h.add("delayed_cast %d %s %s", e.Delay, e.Alias, e.Msg)
	return &emptypb.Empty{}, nil
}
func (h *host) Sync(_ context.Context, e *guestapi.SyncData) (*emptypb.Empty, error) {
	h.add("sync %s", e.SerializedState)
	return &emptypb.Empty{}, nil
}

// every makes every host call from its Call handler.
type every struct {
	h     *Host
	state string
}

func (f *every) Init(payload string, state []byte) error {
	f.state = payload + "/" + string(state)
	return nil
}
func (f *every) Cast(src InstanceID, msg []byte) { f.h.Cast("out", msg) }
func (f *every) Call(src InstanceID, msg []byte) ([]byte, error) {
	if string(msg) == "fail" {
		return nil, fmt.Errorf("asked to fail")
	}
	me, err := f.h.Self()
	if err != nil {
		return nil, err
	}
	f.h.CastRaw(src, []byte("raw"))
	ret, reply, _ := f.h.Call("peer", []byte("21"))
	ret2, _, _ := f.h.CallRaw(src, []byte("raw?"))
	f.h.DelayedCast(50*time.Millisecond, "out", []byte("later"))
	f.h.TelemetryLog(LogWarn, "every", "hello")
	f.h.Sync([]byte("s1"))
	return fmt.Appendf(nil, "%s %s %s %d %s %d", f.state, me.Node, me.Function, ret, reply, ret2), nil
}
func (f *every) Stop() { f.h.TelemetryLog(LogInfo, "every", "stopped") }

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestServe drives a Go function as a node does, Boot to Stop, and checks
// every host call it makes.
func TestServe(t *testing.T) {
	h := &host{}
	hl := listen(t)
	hs := grpc.NewServer()
	guestapi.RegisterGuestAPIHostServer(hs, h)
	go hs.Serve(hl)
	defer hs.Stop()

	fl := listen(t)
	addr := fl.Addr().String()
	fl.Close()
	served := make(chan error, 1)
	go func() { served <- Serve(addr, func(h *Host) Function { return &every{h: h} }) }()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fn := guestapi.NewGuestAPIFunctionClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	me := &guestapi.InstanceId{NodeId: "n", FunctionId: "f"}
	if _, err := fn.Boot(ctx, &guestapi.BootData{GuestApiHostEndpoint: "http://" + hl.Addr().String(), InstanceId: me}, grpc.WaitForReady(true)); err != nil {
		t.Fatal(err)
	}
	if _, err := fn.Init(ctx, &guestapi.FunctionInstanceInit{InitPayload: "p", SerializedState: []byte("s0")}); err != nil {
		t.Fatal(err)
	}
	src := &guestapi.InstanceId{NodeId: "n2", FunctionId: "f2"}
	r, err := fn.Call(ctx, &guestapi.InputEventData{Src: src, Msg: []byte("go")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != guestapi.CallRetType_CALL_RET_REPLY || string(r.Msg) != "p/s0 n f 1 42 0" {
		t.Fatalf("call = %v %q", r.Type, r.Msg)
	}
	if r, err := fn.Call(ctx, &guestapi.InputEventData{Src: src, Msg: []byte("fail")}); err != nil || r.Type != guestapi.CallRetType_CALL_RET_ERR {
		t.Fatalf("failing call = %v, %v; want CALL_RET_ERR", r, err)
	}
	if _, err := fn.Cast(ctx, &guestapi.InputEventData{Src: src, Msg: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	if _, err := fn.Stop(ctx, &emptypb.Empty{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v after Stop", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Stop")
	}
	want := []string{
		"cast_raw n2/f2 raw", "call peer 21", "call_raw n2/f2 raw?", "delayed_cast 50 out later",
		"log 1 every hello", "sync s1", "cast n/f out c", "log 2 every stopped",
	}
	h.mu.Lock()
	got := strings.Join(h.calls, "\n")
	h.mu.Unlock()
	if got != strings.Join(want, "\n") {
		t.Fatalf("host calls:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
