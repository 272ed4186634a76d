package container

import (
	"context"
	"net"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/edgeless-go/edgeless/container/guestapi"
	"github.com/edgeless-go/edgeless/core"
)

// hostServer serves GuestAPIHost. Only the runtime's containers may call
// it: a request is tied to the container by its source address, and to the
// instance that container serves; an originator naming another instance is
// refused.
type hostServer struct {
	guestapi.UnimplementedGuestAPIHostServer
	rt *Runtime
}

var empty = &emptypb.Empty{}

// caller returns the instance on whose behalf the container at the request's
// source address calls.
func (s *hostServer) caller(ctx context.Context, originator *guestapi.InstanceId) (*Instance, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "unknown peer")
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, "unknown peer address")
	}
	b := s.rt.boxAt(host)
	if b == nil || b.removed.Load() {
		return nil, status.Errorf(codes.PermissionDenied, "%s is not a container of this node", host)
	}
	i := b.owner.Load()
	if i == nil {
		return nil, status.Error(codes.FailedPrecondition, "the container serves no handler now")
	}
	// A pooled container was booted by whichever instance created it.
	if i.own == b && originator != nil && originator.FunctionId != "" && originator.FunctionId != i.self.Component.String() {
		return nil, status.Errorf(codes.PermissionDenied, "container of instance %s cannot act as %s", i.self.Component, originator.FunctionId)
	}
	return i, nil
}

// run runs fn as a host call of the calling container's instance.
func (s *hostServer) run(ctx context.Context, originator *guestapi.InstanceId, fn func(Host)) error {
	i, err := s.caller(ctx, originator)
	if err == nil {
		if err = i.hostCall(fn); err != nil {
			err = status.Error(codes.FailedPrecondition, err.Error())
		}
	}
	if err != nil {
		s.rt.count.hostRefused.Add(1)
		return err
	}
	s.rt.count.hostCalls.Add(1)
	return nil
}

func parseInstance(id *guestapi.InstanceId) (core.InstanceID, error) {
	var out core.InstanceID
	var err error
	if out.Node, err = core.ParseID(id.GetNodeId()); err != nil {
		return out, status.Errorf(codes.InvalidArgument, "dst node_id: %v", err)
	}
	if out.Component, err = core.ParseID(id.GetFunctionId()); err != nil {
		return out, status.Errorf(codes.InvalidArgument, "dst function_id: %v", err)
	}
	return out, nil
}

func callReturn(ret core.CallRet, reply []byte) *guestapi.CallReturn {
	cr := &guestapi.CallReturn{Type: guestapi.CallRetType(ret)}
	if ret == core.CallReply {
		cr.Msg = append([]byte(nil), reply...) // the Host's reply lives until its next call
	}
	return cr
}

func (s *hostServer) Cast(ctx context.Context, e *guestapi.OutputEventData) (*emptypb.Empty, error) {
	return empty, s.run(ctx, e.Originator, func(h Host) { h.Cast([]byte(e.Alias), e.Msg) })
}

func (s *hostServer) CastRaw(ctx context.Context, e *guestapi.OutputEventDataRaw) (*emptypb.Empty, error) {
	dst, err := parseInstance(e.Dst)
	if err != nil {
		return nil, err
	}
	return empty, s.run(ctx, e.Originator, func(h Host) { h.CastRaw(dst, e.Msg) })
}

func (s *hostServer) Call(ctx context.Context, e *guestapi.OutputEventData) (*guestapi.CallReturn, error) {
	var cr *guestapi.CallReturn
	err := s.run(ctx, e.Originator, func(h Host) { cr = callReturn(h.Call([]byte(e.Alias), e.Msg)) })
	return cr, err
}

func (s *hostServer) CallRaw(ctx context.Context, e *guestapi.OutputEventDataRaw) (*guestapi.CallReturn, error) {
	dst, err := parseInstance(e.Dst)
	if err != nil {
		return nil, err
	}
	var cr *guestapi.CallReturn
	err = s.run(ctx, e.Originator, func(h Host) { cr = callReturn(h.CallRaw(dst, e.Msg)) })
	return cr, err
}

// TelemetryLog maps EDGELESS's gRPC levels (0 error … 4 trace) to the
// Host's (1 error … 5 trace).
func (s *hostServer) TelemetryLog(ctx context.Context, e *guestapi.TelemetryLogEvent) (*emptypb.Empty, error) {
	level := int32(e.LogLevel) + 1
	return empty, s.run(ctx, e.Originator, func(h Host) { h.TelemetryLog(level, []byte(e.Target), []byte(e.Msg)) })
}

// Slf answers without waiting for the instance goroutine: the id never
// changes.
func (s *hostServer) Slf(ctx context.Context, _ *emptypb.Empty) (*guestapi.InstanceId, error) {
	i, err := s.caller(ctx, nil)
	if err != nil {
		return nil, err
	}
	return instanceID(i.self), nil
}

func (s *hostServer) DelayedCast(ctx context.Context, e *guestapi.DelayedEventData) (*emptypb.Empty, error) {
	ms := int64(min(e.Delay, 1<<62))
	return empty, s.run(ctx, e.Originator, func(h Host) { h.DelayedCast(ms, []byte(e.Alias), e.Msg) })
}

func (s *hostServer) Sync(ctx context.Context, e *guestapi.SyncData) (*emptypb.Empty, error) {
	return empty, s.run(ctx, e.Originator, func(h Host) { h.Sync(e.SerializedState) })
}
