// Package function writes container functions in Go: Serve runs a Function
// as EDGELESS's GuestAPIFunction gRPC service, and the Host it hands the
// Function makes the host calls of GuestAPIHost. Build the program
// statically (CGO_ENABLED=0) and put it in an image that EXPOSEs the port it
// serves on (7101 by default); see examples/container/double_go.
package function

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/edgeless-go/edgeless/container/guestapi"
)

// DefaultAddr is where Serve listens unless EDGELESS_PORT says otherwise.
const DefaultAddr = ":7101"

// InstanceID is the address of a function instance.
type InstanceID struct {
	Node     string // node UUID
	Function string // instance UUID
}

// CallRet says how a call was answered.
type CallRet int32

// Call results, numbered as in EDGELESS.
const (
	NoReply CallRet = 0
	Reply   CallRet = 1
	Err     CallRet = 2
)

// Log levels of TelemetryLog, as in EDGELESS.
const (
	LogError int32 = iota
	LogWarn
	LogInfo
	LogDebug
	LogTrace
)

// Function is a container function's handlers. They run one at a time.
type Function interface {
	// Init receives the init-payload annotation and the state last passed
	// to Host.Sync (nil for none).
	Init(payload string, state []byte) error
	Cast(src InstanceID, msg []byte)
	// Call returns the reply; nil and no error mean no reply, an error an
	// error reply.
	Call(src InstanceID, msg []byte) ([]byte, error)
	Stop()
}

// Host makes host calls to the node. Its methods are safe to call from a
// handler; errors are those of the node's gRPC server.
type Host struct {
	c  guestapi.GuestAPIHostClient
	me *guestapi.InstanceId
}

func pb(id InstanceID) *guestapi.InstanceId {
	return &guestapi.InstanceId{NodeId: id.Node, FunctionId: id.Function}
}

func ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), time.Minute)
}

// Cast sends msg to the instance mapped to output alias.
func (h *Host) Cast(alias string, msg []byte) error {
	c, cancel := ctx()
	defer cancel()
	_, err := h.c.Cast(c, &guestapi.OutputEventData{Originator: h.me, Alias: alias, Msg: msg})
	return err
}

// CastRaw sends msg to the instance dst.
func (h *Host) CastRaw(dst InstanceID, msg []byte) error {
	c, cancel := ctx()
	defer cancel()
	_, err := h.c.CastRaw(c, &guestapi.OutputEventDataRaw{Originator: h.me, Dst: pb(dst), Msg: msg})
	return err
}

// Call calls the instance mapped to alias and returns its answer.
func (h *Host) Call(alias string, msg []byte) (CallRet, []byte, error) {
	c, cancel := ctx()
	defer cancel()
	r, err := h.c.Call(c, &guestapi.OutputEventData{Originator: h.me, Alias: alias, Msg: msg})
	if err != nil {
		return Err, nil, err
	}
	return CallRet(r.Type), r.Msg, nil
}

// CallRaw calls the instance dst and returns its answer.
func (h *Host) CallRaw(dst InstanceID, msg []byte) (CallRet, []byte, error) {
	c, cancel := ctx()
	defer cancel()
	r, err := h.c.CallRaw(c, &guestapi.OutputEventDataRaw{Originator: h.me, Dst: pb(dst), Msg: msg})
	if err != nil {
		return Err, nil, err
	}
	return CallRet(r.Type), r.Msg, nil
}

// DelayedCast casts msg to alias after delay.
func (h *Host) DelayedCast(delay time.Duration, alias string, msg []byte) error {
	c, cancel := ctx()
	defer cancel()
	_, err := h.c.DelayedCast(c, &guestapi.DelayedEventData{Originator: h.me, Alias: alias, Msg: msg, Delay: uint64(delay.Milliseconds())})
	return err
}

// TelemetryLog logs msg on the node at level (LogError … LogTrace).
func (h *Host) TelemetryLog(level int32, target, msg string) error {
	c, cancel := ctx()
	defer cancel()
	_, err := h.c.TelemetryLog(c, &guestapi.TelemetryLogEvent{Originator: h.me, LogLevel: guestapi.TelemetryLogLevel(level), Target: target, Msg: msg})
	return err
}

// Self returns the instance's address, as the node knows it.
func (h *Host) Self() (InstanceID, error) {
	c, cancel := ctx()
	defer cancel()
	r, err := h.c.Slf(c, &emptypb.Empty{})
	if err != nil {
		return InstanceID{}, err
	}
	return InstanceID{Node: r.NodeId, Function: r.FunctionId}, nil
}

// Sync persists state; Init receives it when the instance is re-created.
func (h *Host) Sync(state []byte) error {
	c, cancel := ctx()
	defer cancel()
	_, err := h.c.Sync(c, &guestapi.SyncData{Originator: h.me, SerializedState: state})
	return err
}

// Serve serves the function made by newFn (called at Boot with the Host)
// until the node calls Stop or the process gets SIGTERM. addr "" means
// DefaultAddr, or ":$EDGELESS_PORT".
func Serve(addr string, newFn func(*Host) Function) error {
	if addr == "" {
		addr = DefaultAddr
		if p := os.Getenv("EDGELESS_PORT"); p != "" {
			addr = ":" + p
		}
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	s := &server{newFn: newFn, stopped: make(chan struct{})}
	srv := grpc.NewServer()
	guestapi.RegisterGuestAPIFunctionServer(srv, s)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-sig:
		case <-s.stopped:
		}
		srv.GracefulStop()
	}()
	err = srv.Serve(lis)
	if s.conn != nil {
		s.conn.Close()
	}
	return err
}

type server struct {
	guestapi.UnimplementedGuestAPIFunctionServer
	newFn    func(*Host) Function
	mu       sync.Mutex // one handler at a time
	fn       Function
	conn     *grpc.ClientConn
	stopped  chan struct{}
	stopOnce sync.Once
}

var errNotBooted = errors.New("function not booted")

func (s *server) Boot(_ context.Context, b *guestapi.BootData) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	target := b.GuestApiHostEndpoint
	if i := strings.Index(target, "://"); i >= 0 {
		target = target[i+3:]
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the host at %s: %w", b.GuestApiHostEndpoint, err)
	}
	if s.conn != nil {
		s.conn.Close()
	}
	s.conn = conn
	s.fn = s.newFn(&Host{c: guestapi.NewGuestAPIHostClient(conn), me: b.InstanceId})
	return &emptypb.Empty{}, nil
}

func (s *server) Init(_ context.Context, in *guestapi.FunctionInstanceInit) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fn == nil {
		return nil, errNotBooted
	}
	return &emptypb.Empty{}, s.fn.Init(in.InitPayload, in.SerializedState)
}

func src(id *guestapi.InstanceId) InstanceID {
	return InstanceID{Node: id.GetNodeId(), Function: id.GetFunctionId()}
}

func (s *server) Cast(_ context.Context, e *guestapi.InputEventData) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fn == nil {
		return nil, errNotBooted
	}
	s.fn.Cast(src(e.Src), e.Msg)
	return &emptypb.Empty{}, nil
}

func (s *server) Call(_ context.Context, e *guestapi.InputEventData) (*guestapi.CallReturn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fn == nil {
		return nil, errNotBooted
	}
	reply, err := s.fn.Call(src(e.Src), e.Msg)
	switch {
	case err != nil:
		return &guestapi.CallReturn{Type: guestapi.CallRetType_CALL_RET_ERR, Msg: []byte(err.Error())}, nil
	case reply == nil:
		return &guestapi.CallReturn{Type: guestapi.CallRetType_CALL_RET_NO_REPLY}, nil
	}
	return &guestapi.CallReturn{Type: guestapi.CallRetType_CALL_RET_REPLY, Msg: reply}, nil
}

func (s *server) Stop(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fn != nil {
		s.fn.Stop()
	}
	s.stopOnce.Do(func() { close(s.stopped) })
	return &emptypb.Empty{}, nil
}
