package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/wire"
)

// A cast whose target is moving — its node left or failed, or no longer runs
// it, or the orchestrator took it out of the sender's outputs until its
// replacement runs — is held by its sender until the orchestrator patches the
// sender's outputs to the target's new instance, instead of being dropped. Holding is
// bounded per instance in count (mailbox_size) and time (call_timeout_ms).

var (
	errUnmapped    = errors.New("output is not mapped")
	errReplacing   = errors.New("the output's target is being re-created")
	errHeldTooMany = errors.New("too many casts wait for their target to move")
	errGaveUp      = errors.New("the target did not come back in time")
	errStopping    = errors.New("the sender stopped")
	errFenced      = errors.New("the node is cut off from its orchestrator past its lease")
)

// moving reports whether a cast failed because its target is being moved:
// errors that a patch of the output mapping repairs.
func moving(err error) bool {
	return errors.Is(err, errReplacing) || errors.Is(err, errNoPeer) || errors.Is(err, errNoInstance) ||
		errors.Is(err, wire.ErrUnavailable) || errors.Is(err, wire.ErrClosed)
}

// heldCast is a cast waiting for the next patch of its sender's outputs.
type heldCast struct {
	output  string
	payload []byte // the sender's copy
	created int64
	until   time.Time
	done    chan error // the result, for a sender that waits; nil otherwise
	gaveUp  bool       // the waiting sender stopped waiting; guarded by heldCasts.mu
}

// heldCasts are an instance's casts waiting for a patch.
type heldCasts struct {
	mu      sync.Mutex
	list    []*heldCast
	stopped bool
}

// castOutput casts payload (copied) to output. A cast to a moving target is
// held; with wait it returns once the cast is delivered or given up, with
// the error, and without wait at once. Safe from any goroutine; fromHandler:
// the instance's running handler casts (see send).
func (inst *instance) castOutput(output, payload []byte, created int64, wait, fromHandler bool) error {
	to, ok := inst.resolve(output)
	if !ok && !inst.known(output) {
		return errUnmapped
	}
	err := errReplacing
	if ok {
		e := core.Event{Kind: core.KindCast, Target: to, Source: inst.id, Created: created, Payload: payload}
		err = inst.sendOutput(&e, fromHandler)
	}
	if err == nil {
		return nil
	}
	if !moving(err) {
		inst.dropCast(to, err)
		return err
	}
	return inst.hold(string(output), payload, created, wait)
}

// dropCast counts a cast that could not be sent.
func (inst *instance) dropCast(to core.InstanceID, err error) {
	inst.n.dropped.Inc()
	if inst.log.Enabled(context.Background(), slog.LevelDebug) {
		inst.log.Debug("cast dropped", "to", to.String(), "err", err)
	}
}

func (inst *instance) hold(output string, payload []byte, created int64, wait bool) error {
	h := &heldCast{output: output, payload: bytes.Clone(payload), created: created, until: time.Now().Add(inst.n.callTimeout())}
	if wait {
		h.done = make(chan error, 1)
	}
	hc := &inst.held
	hc.mu.Lock()
	switch {
	case hc.stopped:
		hc.mu.Unlock()
		inst.n.dropped.Inc()
		return errStopping
	case len(hc.list) >= inst.n.cfg.General.MailboxSize:
		hc.mu.Unlock()
		inst.n.dropped.Inc()
		return errHeldTooMany
	}
	hc.list = append(hc.list, h)
	hc.mu.Unlock()
	if !wait {
		return nil
	}
	t := time.NewTimer(time.Until(h.until))
	defer t.Stop()
	var err error
	select {
	case err = <-h.done:
		return err
	case <-t.C:
		err = errGaveUp
	case <-inst.quit:
		err = errStopping
	}
	if !hc.giveUp(h) {
		return <-h.done // a patch is sending it right now
	}
	inst.n.dropped.Inc()
	return fmt.Errorf("cannot cast to %q: %w", output, err)
}

// giveUp marks h as no longer waited for and removes it; it reports whether
// h was still held. If not, resendHeld has it and will answer on done.
func (hc *heldCasts) giveUp(h *heldCast) bool {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	h.gaveUp = true
	for i, x := range hc.list {
		if x == h {
			hc.list = append(hc.list[:i], hc.list[i+1:]...)
			return true
		}
	}
	return false
}

// resendHeld sends the held casts again through the outputs just patched.
// Those whose target is still moving stay held until their time is up.
func (inst *instance) resendHeld() {
	hc := &inst.held
	hc.mu.Lock()
	list := hc.list
	hc.list = nil
	hc.mu.Unlock()
	if len(list) == 0 {
		return
	}
	now := time.Now()
	var again []*heldCast
	for _, h := range list {
		err := errReplacing
		to, ok := inst.resolve([]byte(h.output))
		if ok {
			e := core.Event{Kind: core.KindCast, Target: to, Source: inst.id, Created: h.created, Payload: h.payload}
			err = inst.n.route(&e)
		}
		if err != nil && moving(err) && now.Before(h.until) {
			again = append(again, h)
			continue
		}
		if h.done != nil {
			h.done <- err
		} else if err != nil {
			inst.dropCast(to, err)
		}
	}
	if len(again) == 0 {
		return
	}
	hc.mu.Lock()
	defer hc.mu.Unlock()
	keep := again[:0]
	for _, h := range again {
		if h.gaveUp { // its sender stopped waiting while it was out
			inst.n.dropped.Inc()
			h.done <- errGaveUp
			continue
		}
		keep = append(keep, h)
	}
	hc.list = append(keep, hc.list...)
}

// dropHeld gives up the held casts of an instance that stops; waiting
// senders give up on their own (quit).
func (inst *instance) dropHeld() {
	hc := &inst.held
	hc.mu.Lock()
	defer hc.mu.Unlock()
	hc.stopped = true
	for _, h := range hc.list {
		if h.done == nil {
			inst.n.dropped.Inc()
		}
	}
	hc.list = nil
}
