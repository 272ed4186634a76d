package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/edgeless-go/edgeless/container/guestapi"
	"github.com/edgeless-go/edgeless/core"
)

// Spec is what an instance runs.
type Spec struct {
	// Image is the image reference (see Image).
	Image string
	// Runtime is "" for an EDGELESS container function (the image is the
	// function), or the language runtime ("python310", "custom") whose image
	// runs Handler from Code.
	Runtime string
	// Code is a language-runtime function's source file, or a tar archive of
	// its files; the runtime gets it at Init (codeArchive).
	Code []byte
	// CodeSum is Code's SHA-256: containers of equal code are pooled together.
	CodeSum [32]byte
	// Handler names the function a language runtime calls: module.function.
	Handler string
	// MemoryMB and CPUs limit each container; 0 takes the runtime's default.
	MemoryMB int
	CPUs     float64
}

// ErrDead is returned by an instance whose container failed or that was
// closed.
var ErrDead = errors.New("container instance is dead")

// Instance is one function instance. An EDGELESS container function has a
// container of its own for its lifetime; a language-runtime function takes
// a warm container of its pool for each event. An Instance is used by one
// goroutine at a time (the node's instance goroutine); Host methods run
// inside the handler that made them, while that goroutine waits for the
// container (see Host).
type Instance struct {
	rt   *Runtime
	host Host
	self core.InstanceID
	spec Spec
	log  *slog.Logger

	own  *box  // EDGELESS: the instance's container
	pool *pool // language runtime: where containers come from

	// mu is held by whoever acts for the instance inside a handler: the
	// instance goroutine, or a host call the container makes meanwhile,
	// while the instance goroutine waits in the request. It orders their
	// memory accesses, and inHandler, which it guards, confines host calls
	// to handlers.
	mu        sync.Mutex
	inHandler bool
	dead      bool
	j         job // reused: one request at a time

	closeOnce sync.Once
}

type jobOp uint8

const (
	opInit jobOp = iota
	opCast
	opCall
	opStop
)

// job is one GuestAPIFunction request.
type job struct {
	op      jobOp
	b       *box
	src     core.InstanceID
	msg     []byte
	payload string
	state   []byte
}

type result struct {
	ret   core.CallRet
	reply []byte
	err   error
}

// Instantiate creates an instance of s whose host calls go to h. For an
// EDGELESS container function it creates, starts and boots the container;
// a language-runtime function gets its containers at Init.
func (r *Runtime) Instantiate(ctx context.Context, s Spec, h Host) (*Instance, error) {
	i := &Instance{
		rt: r, host: h, self: h.Self(), spec: s,
		log: r.log.With("instance", h.Self().Component.String(), "image", s.Image),
	}
	if s.Runtime == "" {
		b := r.takeSpare(s.Image, s.MemoryMB, s.CPUs)
		if b == nil {
			var err error
			if b, err = r.newBox(ctx, boxSpec{image: s.Image, kind: "instance", memoryMB: s.MemoryMB, cpus: s.CPUs}); err != nil {
				return nil, err
			}
		}
		b.owner.Store(i)
		if err := b.boot(ctx, i.self); err != nil {
			b.remove()
			return nil, err
		}
		i.own = b
	} else {
		p, err := r.poolFor(s)
		if err != nil {
			return nil, err
		}
		i.pool = p
	}
	return i, nil
}

// Exited is closed when the instance's own container stops running by
// itself; for a language-runtime instance it is never closed (a dead
// container is replaced at the next event).
func (i *Instance) Exited() <-chan struct{} {
	if i.own == nil {
		return nil
	}
	return i.own.exited
}

// Init runs handle_init with the init-payload and the state saved by sync.
// A language-runtime function warms its pool: its handler is loaded in at
// least one container.
func (i *Instance) Init(payload, state []byte) error {
	if i.pool != nil {
		if err := i.pool.prewarm(i); err != nil {
			i.dead = true
			return err
		}
		return nil
	}
	_, _, err := i.request(opInit, i.own, core.InstanceID{}, state, string(payload))
	return err
}

// Cast runs handle_cast. An error means the container failed (it died, hung
// past the handler timeout or ran out of memory) and the instance is dead.
func (i *Instance) Cast(src core.InstanceID, payload []byte) error {
	if i.pool != nil {
		_, _, err := i.pooled(opCast, src, payload)
		return err
	}
	_, _, err := i.request(opCast, i.own, src, payload, "")
	return err
}

// Call runs handle_call; the reply is valid until the next method call.
func (i *Instance) Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	if i.pool != nil {
		return i.pooled(opCall, src, payload)
	}
	return i.request(opCall, i.own, src, payload, "")
}

// Stop runs handle_stop. A language-runtime function's containers are
// stateless: they go back to the pool without it.
func (i *Instance) Stop() error {
	if i.pool != nil || i.dead {
		return nil
	}
	_, _, err := i.request(opStop, i.own, core.InstanceID{}, nil, "")
	return err
}

// Close removes the instance's container (or leaves its pool). It is
// idempotent.
func (i *Instance) Close() {
	i.closeOnce.Do(func() {
		if i.own != nil {
			i.own.remove()
		}
		if i.pool != nil {
			i.rt.leavePool(i.pool)
		}
	})
}

// pooled runs one event in a container of the pool. A container that fails
// is removed and the event answered with an error; the function lives on and
// the next event gets a fresh container.
func (i *Instance) pooled(op jobOp, src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	b, err := i.pool.get(i)
	if err != nil {
		i.log.Error("no container for the event", "err", err)
		return core.CallErr, nil, nil
	}
	ret, reply, err := i.request(op, b, src, payload, "")
	if err != nil {
		i.log.Warn("container failed; it will be replaced", "container", b.short(), "err", err)
		b.remove()
		return core.CallErr, nil, nil
	}
	i.pool.put(b)
	return ret, reply, nil
}

// request makes one request to b; the host calls the container makes
// meanwhile run on their gRPC goroutines, holding mu. A failed request
// removes b and, for the instance's own container, makes the instance dead.
func (i *Instance) request(op jobOp, b *box, src core.InstanceID, msg []byte, payload string) (core.CallRet, []byte, error) {
	if i.dead {
		return core.CallErr, nil, ErrDead
	}
	i.j = job{op: op, b: b, src: src, msg: msg, payload: payload, state: msg}
	b.owner.Store(i)
	i.mu.Lock() // publishes what this goroutine wrote to the host calls
	i.inHandler = true
	i.mu.Unlock()
	r := i.rt.do(&i.j)
	i.mu.Lock() // waits for a host call still running, and sees its writes
	i.inHandler = false
	i.mu.Unlock()
	if r.err != nil {
		if b == i.own {
			i.dead = true
			b.remove()
		}
		return core.CallErr, nil, r.err
	}
	return r.ret, r.reply, nil
}

// do makes one GuestAPIFunction request.
func (r *Runtime) do(j *job) result {
	timeout := r.cfg.HandlerTimeout
	if j.op == opInit {
		timeout = r.cfg.StartTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var res result
	var err error
	switch j.op {
	case opInit:
		_, err = j.b.fn.Init(ctx, &guestapi.FunctionInstanceInit{InitPayload: j.payload, SerializedState: j.state})
	case opCast:
		_, err = j.b.fn.Cast(ctx, &guestapi.InputEventData{Src: instanceID(j.src), Msg: j.msg})
	case opCall:
		var cr *guestapi.CallReturn
		cr, err = j.b.fn.Call(ctx, &guestapi.InputEventData{Src: instanceID(j.src), Msg: j.msg})
		if err == nil {
			res.ret, res.reply = core.CallRet(cr.GetType()), cr.GetMsg()
			if res.ret != core.CallReply {
				res.reply = nil
			}
		}
	case opStop:
		_, err = j.b.fn.Stop(ctx, &emptypb.Empty{})
	}
	if err != nil {
		r.count.failed.Add(1)
		err = j.b.why(err)
		// gRPC's own timer may end the call a moment before ctx's.
		timedOut := ctx.Err() != nil || status.Code(err) == codes.DeadlineExceeded
		if timedOut && !errors.Is(err, ErrExited) && !errors.Is(err, ErrMemoryLimit) {
			err = fmt.Errorf("%w: no answer within %v: %w", ErrHung, timeout, err)
		}
		res.err = err
	}
	return res
}

// errNotInHandler refuses a host call made while no handler runs: the
// instance goroutine may then be doing anything.
var errNotInHandler = errors.New("host calls are accepted only while a handler of the instance runs")

// hostCall runs fn as a host call of the instance, which must be inside a
// handler: its goroutine then waits in request.
func (i *Instance) hostCall(fn func(Host)) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.inHandler {
		return errNotInHandler
	}
	fn(i.host)
	return nil
}
