package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

// functionHost is the Host of one function instance, for every runtime: the
// host calls a function makes. It runs on the instance goroutine, inside a
// handler.
type functionHost struct{ *functionInstance }

func (h functionHost) Cast(output, payload []byte) {
	if err := h.castOutput(output, payload, h.created(), false, true); err == errUnmapped && h.log.Enabled(context.Background(), slog.LevelDebug) {
		h.log.Debug("cast to an unmapped output dropped", "output", string(output))
	}
}

func (h functionHost) CastRaw(to core.InstanceID, payload []byte) {
	h.castTo(to, payload, h.created(), true)
}

func (h functionHost) Call(output, payload []byte) (core.CallRet, []byte) {
	to, ok := h.resolve(output)
	if !ok && h.waitPatch() {
		to, ok = h.resolve(output)
	}
	if !ok {
		h.log.Warn("call to an unmapped output", "output", string(output))
		return core.CallErr, nil
	}
	return h.callTo(to, payload)
}

func (h functionHost) CallRaw(to core.InstanceID, payload []byte) (core.CallRet, []byte) {
	return h.callTo(to, payload)
}

func (h functionHost) DelayedCast(ms int64, output, payload []byte) {
	h.delayedCast(ms, output, payload)
}

func (h functionHost) Sync(state []byte) {
	// A write still pending when the lease ends is abandoned (its
	// connection reset): delivered later, it would overwrite the state of
	// the instance that replaces this one.
	h.flushOut() // not to hold them up while the write waits
	ctx, cancel := context.WithDeadline(context.Background(), h.n.leaseEnd())
	defer cancel()
	if err := h.n.state.save(ctx, h.logical, state); err != nil {
		h.log.Error("cannot save function state", "err", err)
	}
	h.seq++
	if h.n.replicas != nil {
		h.n.replicas.add(h.logical, h.seq, state)
	}
}

func (h functionHost) TelemetryLog(level int32, target, msg []byte) {
	l := slog.LevelInfo
	switch level {
	case 1:
		l = slog.LevelError
	case 2:
		l = slog.LevelWarn
	case 4, 5:
		l = slog.LevelDebug
	}
	ctx := context.Background()
	logged, s := h.log.Enabled(ctx, l), h.metrics.samples
	if !logged && s == nil {
		return
	}
	// Both strings in one allocation rather than one each.
	var buf [128]byte
	tm := string(append(append(buf[:0], target...), msg...))
	now, t, m := time.Now(), tm[:len(target)], tm[len(target):]
	if logged {
		// A record without a caller's pc: slog.Logger.Log would walk the
		// stack for it (runtime.Callers), a large part of a busy function's
		// cost.
		r := slog.NewRecord(now, l, m, 0)
		r.AddAttrs(slog.String("target", t))
		h.log.Handler().Handle(ctx, r)
	}
	if s != nil {
		s.log(h.id.Component, now, t, m)
	}
}

func (h functionHost) Self() core.InstanceID { return h.id }

// resourceHost lets a resource cast and call on its outputs from any goroutine.
type resourceHost struct{ *resourceInstance }

// Cast returns once the cast is queued, or, when its target is being
// moved, once it is queued to the new one or given up: an error means the
// event is not delivered.
func (h resourceHost) Cast(output string, payload []byte) error {
	err := h.castOutput([]byte(output), payload, time.Now().UnixNano(), true, false)
	if err == errUnmapped {
		return fmt.Errorf("output %q is not mapped", output)
	}
	return err
}

func (h resourceHost) Call(ctx context.Context, output string, payload []byte) (core.CallRet, []byte, error) {
	to, ok := h.resolve([]byte(output))
	if !ok {
		return core.CallErr, nil, fmt.Errorf("output %q is not mapped", output)
	}
	return h.calls.call(ctx, h.id, to, payload, h.n.route, h.quit)
}
