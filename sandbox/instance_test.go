package sandbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

var (
	srcID  = core.InstanceID{Node: core.ID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, Component: core.ID{0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF, 0xB0}}
	selfID = core.InstanceID{Node: core.ID{0x51, 0xF}, Component: core.ID{0xC0, 0xFF, 0xEE}}
	// binPayload is not UTF-8.
	binPayload = []byte{0x00, 0xFF, 0xFE, 0x80, 0xC3, 0x28}
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func newABIInstance(t *testing.T, cfg Config) (*Instance, *recordingHost) {
	t.Helper()
	r := newRuntime(t, cfg)
	h := &recordingHost{self: selfID}
	i := instantiate(t, r, load(t, r, abiGuest(t)), h)
	return i, h
}

func TestHostImports(t *testing.T) {
	i, h := newABIInstance(t, Config{})
	f := func(payload []byte, want ...hostCall) {
		t.Helper()
		if err := i.Cast(srcID, payload); err != nil {
			t.Fatalf("Cast(%q): %v", payload, err)
		}
		if got := h.take(); !reflect.DeepEqual(got, want) {
			t.Fatalf("Cast(%q): host got\n%+v\nwant\n%+v", payload, got, want)
		}
	}
	f(cat([]byte("c"), binPayload), hostCall{Op: "cast", Out: "out", Data: binPayload})
	f([]byte("c"), hostCall{Op: "cast", Out: "out"})
	target := core.InstanceID{Node: core.ID{9, 9, 9}, Component: core.ID{8, 8, 8}}
	f(cat([]byte("r"), target.Node[:], target.Component[:], binPayload), hostCall{Op: "cast_raw", ID: target, Data: binPayload})
	f(cat([]byte("l"), binPayload), hostCall{Op: "log", N: 3, Out: "tgt", Data: binPayload})
	f(cat([]byte("s"), binPayload), hostCall{Op: "sync", Data: binPayload})
	delay := int64(1)<<40 + 1234 // needs all 64 bits
	f(cat([]byte("d"), binary.LittleEndian.AppendUint64(nil, uint64(delay)), binPayload),
		hostCall{Op: "delayed_cast", N: delay, Out: "later", Data: binPayload})
	f([]byte("S"), hostCall{Op: "self"}, hostCall{Op: "cast", Out: "slf", Data: cat(selfID.Node[:], selfID.Component[:])})
	f([]byte("E"), hostCall{Op: "cast", Out: "src", Data: cat(srcID.Node[:], srcID.Component[:])})
}

// TestCastOrder checks that casts, which the shim queues until the handler
// returns or another import reaches the host, keep their order among
// themselves and with the other imports, and still go out when the handler
// then fails.
func TestCastOrder(t *testing.T) {
	i, h := newABIInstance(t, Config{})
	var big [1 << 16]byte // the guest's heap: the arena the host allocated from
	for _, p := range []string{"Q", "Qu"} {
		err := i.Cast(srcID, []byte(p))
		got := h.take()
		want := []hostCall{
			{Op: "cast", Out: "out", Data: []byte("1")},
			{Op: "cast_raw", Data: []byte("2")},
			{Op: "log", N: 3, Out: "tgt", Data: []byte("3")},
			{Op: "cast", Out: "out", Data: []byte("4")},
			{Op: "cast", Out: "big", Data: big[:]},
			{Op: "cast", Out: "out", Data: []byte("5")},
		}
		if len(got) == len(want) && got[4].Out == "big" && len(got[4].Data) == len(big) {
			got[4].Data = big[:] // its first bytes are the arguments of this handler
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Cast(%q): host got\n%+v\nwant\n%+v", p, got, want)
		}
		if p == "Qu" {
			var trap *Trap
			if !errors.As(err, &trap) || !strings.Contains(trap.Message, "unreachable") {
				t.Fatalf("Cast(%q) = %v, want the trap", p, err)
			}
		} else if err != nil {
			t.Fatalf("Cast(%q): %v", p, err)
		}
	}
}

// growWAT allocates every buffer in a page it grows memory by, and casts a
// cast's payload back to output "o".
const growWAT = `(module
  (import "env" "cast_asm" (func $cast (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "o")
  (func (export "edgeless_mem_alloc") (param i32) (result i32)
    i32.const 1
    memory.grow
    i32.const 65536
    i32.mul)
  (func (export "edgeless_mem_free") (param i32 i32))
  (func (export "edgeless_mem_clear"))` + castOnWAT + `
  (func (export "handle_call_asm") (param i32 i32 i32 i32 i32 i32) (result i32) i32.const 0)
  (func (export "handle_init_asm") (param i32 i32 i32 i32))
  (func (export "handle_stop_asm")))`

// TestGrownMemory checks that arguments placed in memory the guest has just
// grown, and casts made from it, carry the right bytes: the shim keeps
// memory's address and refreshes its size only when a range goes past it.
func TestGrownMemory(t *testing.T) {
	r := newRuntime(t, Config{})
	h := &recordingHost{}
	i := instantiate(t, r, load(t, r, wat(t, growWAT)), h)
	for k := range 20 {
		payload := bytes.Repeat([]byte{byte(k + 1)}, 1000+k)
		if err := i.Cast(srcID, payload); err != nil {
			t.Fatal(err)
		}
		want := []hostCall{{Op: "cast", Out: "o", Data: payload}}
		if got := h.take(); !reflect.DeepEqual(got, want) {
			t.Fatalf("cast %d: host got %+v, want %+v", k, got, want)
		}
	}
}

func TestGuestCalls(t *testing.T) {
	i, h := newABIInstance(t, Config{})
	f := func(op string, ret core.CallRet, reply []byte, want ...hostCall) {
		t.Helper()
		h.ret, h.reply = ret, reply
		if err := i.Cast(srcID, cat([]byte(op), binPayload)); err != nil {
			t.Fatal(err)
		}
		if got := h.take(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s with %v %q: host got\n%+v\nwant\n%+v", op, ret, reply, got, want)
		}
	}
	// The guest reports the code, the length in its slot (0xBBBB if not
	// written) and the reply it read through its two 4-byte slots.
	f("C", core.CallReply, binPayload,
		hostCall{Op: "call", Out: "out", Data: binPayload},
		hostCall{Op: "cast", Out: "ret", Data: cat(le32(1), le32(uint32(len(binPayload))), binPayload)})
	f("C", core.CallReply, nil,
		hostCall{Op: "call", Out: "out", Data: binPayload},
		hostCall{Op: "cast", Out: "ret", Data: cat(le32(1), le32(0))})
	f("C", core.CallNoReply, []byte("ignored"),
		hostCall{Op: "call", Out: "out", Data: binPayload},
		hostCall{Op: "cast", Out: "ret", Data: cat(le32(0), le32(0xBBBB))})
	f("C", core.CallErr, nil,
		hostCall{Op: "call", Out: "out", Data: binPayload},
		hostCall{Op: "cast", Out: "ret", Data: cat(le32(2), le32(0xBBBB))})
	f("C", core.CallRet(42), nil,
		hostCall{Op: "call", Out: "out", Data: binPayload},
		hostCall{Op: "cast", Out: "ret", Data: cat(le32(2), le32(0xBBBB))})

	target := core.InstanceID{Node: core.ID{7}, Component: core.ID{6}}
	h.ret, h.reply = core.CallReply, binPayload
	if err := i.Cast(srcID, cat([]byte("R"), target.Node[:], target.Component[:], binPayload)); err != nil {
		t.Fatal(err)
	}
	want := []hostCall{
		{Op: "call_raw", ID: target, Data: binPayload},
		{Op: "cast", Out: "ret", Data: cat(le32(1), le32(uint32(len(binPayload))), binPayload)},
	}
	if got := h.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("call_raw: host got\n%+v\nwant\n%+v", got, want)
	}
}

func TestCallResults(t *testing.T) {
	i, _ := newABIInstance(t, Config{})
	f := func(payload string, wantRet core.CallRet, wantReply []byte) {
		t.Helper()
		ret, reply, err := i.Call(srcID, []byte(payload))
		if err != nil {
			t.Fatalf("Call(%q): %v", payload, err)
		}
		if ret != wantRet || !bytes.Equal(reply, wantReply) {
			t.Fatalf("Call(%q) = %v %x, want %v %x", payload, ret, reply, wantRet, wantReply)
		}
	}
	f("r"+string(binPayload), core.CallReply, cat([]byte{0x00, 0xFF, 0xFE}, binPayload))
	f("z", core.CallReply, []byte{})
	f("n", core.CallNoReply, nil)
	f("e", core.CallErr, nil)
	f("x", core.CallErr, nil) // any other code is an error
	f("i", core.CallReply, cat(srcID.Node[:], srcID.Component[:]))
}

// TestMemoryOwnership checks the order in which the host allocates and frees
// guest memory around each handler, as logged by the guest's allocator.
func TestMemoryOwnership(t *testing.T) {
	i, h := newABIInstance(t, Config{})
	alog := func() []string {
		t.Helper()
		if err := i.Cast(srcID, []byte("A")); err != nil {
			t.Fatal(err)
		}
		calls := h.take()
		if len(calls) != 1 || calls[0].Out != "alog" {
			t.Fatalf("unexpected host calls %+v", calls)
		}
		var evs []string
		for b := calls[0].Data; len(b) >= 4; b = b[4:] {
			v := binary.LittleEndian.Uint32(b)
			evs = append(evs, string(rune(v>>24))+itoa(v&0xFFFFFF))
		}
		return evs
	}
	alog() // forget instantiation and init
	if _, _, err := i.Call(srcID, []byte("rxy")); err != nil {
		t.Fatal(err)
	}
	h.ret, h.reply = core.CallReply, []byte("12345")
	if err := i.Cast(srcID, []byte("Cq")); err != nil {
		t.Fatal(err)
	}
	h.take()
	got := alog()
	want := []string{
		// the free after the first "A" cast: one block, 16+16+1 bytes
		"F33",
		// Call: clear, one block for two 4-byte slots, component id, node
		// id and the 3-byte payload; the guest's own reply; then the block
		// freed, never the reply.
		"C0", "A43", "A5", "F43",
		// Cast "Cq": the host places the 5-byte reply with the guest's
		// allocator; the guest frees it when done.
		"C0", "A34", "A5", "F5", "F34",
		// the second "A" cast
		"C0", "A33",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("allocator log\n%v\nwant\n%v", got, want)
	}
}

func itoa(v uint32) string {
	if v < 10 {
		return string(rune('0' + v))
	}
	return itoa(v/10) + string(rune('0'+v%10))
}

func TestInitAndStop(t *testing.T) {
	f := func(payload, state []byte, want ...hostCall) {
		t.Helper()
		i, h := newABIInstance(t, Config{})
		if err := i.Init(payload, state); err != nil {
			t.Fatal(err)
		}
		if got := h.take(); !reflect.DeepEqual(got, want) {
			t.Fatalf("Init(%q, %q): host got\n%+v\nwant\n%+v", payload, state, got, want)
		}
		if err := i.Stop(); err != nil {
			t.Fatal(err)
		}
		if got := h.take(); len(got) != 1 || got[0].Out != "stop" {
			t.Fatalf("Stop: host got %+v", got)
		}
	}
	f([]byte("k=v"), binPayload,
		hostCall{Op: "cast", Out: "init-payload", Data: []byte("k=v")},
		hostCall{Op: "cast", Out: "init-state", Data: binPayload})
	f(nil, nil,
		hostCall{Op: "cast", Out: "init-payload-none"},
		hostCall{Op: "cast", Out: "init-state-none"})
	f(nil, []byte("s"),
		hostCall{Op: "cast", Out: "init-payload-none"},
		hostCall{Op: "cast", Out: "init-state", Data: []byte("s")})
}

// TestFailures checks that each way an instance can fail gives a *Trap with
// the right reason, kills only that instance, and leaves the runtime
// serving others.
func TestFailures(t *testing.T) {
	r := newRuntime(t, Config{MaxMemoryBytes: 1 << 20, HandlerTimeout: time.Second})
	m := load(t, r, abiGuest(t))
	healthy := instantiate(t, r, m, &recordingHost{})
	f := func(call func(*Instance) error, panicOn string, wantCause error, wantMsg ...string) {
		t.Helper()
		h := &recordingHost{self: selfID, panic: panicOn, ret: core.CallReply, reply: []byte("r")}
		i := instantiate(t, r, m, h)
		err := call(i)
		var trap *Trap
		if !errors.As(err, &trap) {
			t.Fatalf("got %v, want a *Trap", err)
		}
		for _, w := range wantMsg {
			if !strings.Contains(trap.Message, w) {
				t.Fatalf("trap message %q does not contain %q", trap.Message, w)
			}
		}
		if cause := trap.Unwrap(); cause != wantCause {
			t.Fatalf("trap %v: cause %v, want %v", err, trap.Unwrap(), wantCause)
		}
		if err := i.Cast(srcID, []byte("c")); !errors.Is(err, ErrDead) {
			t.Fatalf("Cast after trap: %v, want ErrDead", err)
		}
		if _, _, err := i.Call(srcID, []byte("n")); !errors.Is(err, ErrDead) {
			t.Fatalf("Call after trap: %v, want ErrDead", err)
		}
		if err := healthy.Cast(srcID, []byte("c")); err != nil {
			t.Fatalf("other instance after trap: %v", err)
		}
	}
	cast := func(p string) func(*Instance) error {
		return func(i *Instance) error { return i.Cast(srcID, []byte(p)) }
	}
	call := func(p string) func(*Instance) error {
		return func(i *Instance) error { _, _, err := i.Call(srcID, []byte(p)); return err }
	}
	f(cast("u"), "", nil, "unreachable")
	f(call("u"), "", nil, "unreachable")
	f(cast("G"), "", ErrOutOfMemory, "1048576 bytes")
	f(cast("X"), "", nil, "out of bounds memory access")
	f(cast("V"), "", nil, "call stack exhausted")
	f(cast("O"), "", nil, "cast_asm(", "guest pointer out of bounds")
	f(cast("P"), "", nil, "call_asm(", "guest pointer out of bounds")
	f(cast("M"), "", nil, "telemetry_log_asm(", "guest pointer out of bounds")
	f(cast("N"), "", nil, "slf_asm(", "guest pointer out of bounds")
	f(call("b"), "", nil, "reply [4294967040, +1000) out of bounds")
	f(cast("c"), "cast", nil, "cast_asm: host panic: boom in cast")
	f(cast("r"+string(make([]byte, 32))), "cast_raw", nil, "cast_raw_asm: host panic")
	f(cast("l"), "log", nil, "telemetry_log_asm: host panic")
	f(cast("d"+string(make([]byte, 8))), "delayed_cast", nil, "delayed_cast_asm: host panic")
	f(cast("S"), "self", nil, "slf_asm: host panic")
	f(cast("Cx"), "call", nil, "call_asm: host panic: boom in call")
}

func TestHostPanicIsTrap(t *testing.T) {
	i, _ := newABIInstance(t, Config{})
	i.host.(*recordingHost).panic = "sync"
	err := i.Cast(srcID, []byte("sx"))
	var trap *Trap
	if !errors.As(err, &trap) || trap.Export != "handle_cast_asm" || !strings.Contains(trap.Message, "sync_asm: host panic: boom in sync") {
		t.Fatalf("got %v, want a trap for the panic", err)
	}
}

func TestTimeout(t *testing.T) {
	const budget = 200 * time.Millisecond
	r := newRuntime(t, Config{HandlerTimeout: budget})
	m := load(t, r, abiGuest(t))
	looping := instantiate(t, r, m, &recordingHost{})
	other := instantiate(t, r, m, &recordingHost{})

	var wg sync.WaitGroup
	var loopErr error
	var elapsed time.Duration
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		start := time.Now()
		loopErr = looping.Cast(srcID, []byte("L"))
		elapsed = time.Since(start)
	}()
	served := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			if err := other.Cast(srcID, []byte("c")); err != nil {
				t.Fatal(err)
			}
			served++
		}
	}
	wg.Wait()
	if !errors.Is(loopErr, ErrTimeout) {
		t.Fatalf("looping handler returned %v, want ErrTimeout", loopErr)
	}
	// The budget plus one tick (an eighth), with slack for a machine busy
	// with other work.
	if elapsed < budget || elapsed > budget+budget/8+2*time.Second {
		t.Fatalf("looping handler stopped after %v, budget %v", elapsed, budget)
	}
	if served == 0 {
		t.Fatal("the other instance served nothing while the loop ran")
	}
	if err := looping.Cast(srcID, []byte("c")); !errors.Is(err, ErrDead) {
		t.Fatalf("after timeout: %v, want ErrDead", err)
	}
	if err := other.Cast(srcID, []byte("c")); err != nil {
		t.Fatalf("other instance after timeout: %v", err)
	}
}

// TestHostTimeNotBudgeted checks that time a guest spends waiting in a host
// call does not count against its budget.
func TestHostTimeNotBudgeted(t *testing.T) {
	const budget = 50 * time.Millisecond
	i, h := newABIInstance(t, Config{HandlerTimeout: budget})
	h.ret, h.delay = core.CallNoReply, 3*budget
	if err := i.Cast(srcID, []byte("Cx")); err != nil {
		t.Fatalf("handler waiting %v in a host call: %v", h.delay, err)
	}
}

func TestReentry(t *testing.T) {
	i, h := newABIInstance(t, Config{})
	var inner error
	h2 := &reenteringHost{recordingHost: h, i: i, err: &inner}
	i.host = h2
	if err := i.Cast(srcID, []byte("cx")); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(inner, ErrReentered) {
		t.Fatalf("re-entering Cast returned %v, want ErrReentered", inner)
	}
}

func TestCloseFromHost(t *testing.T) {
	i, h := newABIInstance(t, Config{})
	i.host = &closingHost{recordingHost: h, i: i}
	err := i.Cast(srcID, []byte("cx"))
	var trap *Trap
	if !errors.As(err, &trap) || !strings.Contains(trap.Message, "closed from its own host call") {
		t.Fatalf("Close from a host call: %v, want a trap", err)
	}
	i.Close()
	if err := i.Cast(srcID, nil); !errors.Is(err, ErrDead) {
		t.Fatalf("after Close: %v, want ErrDead", err)
	}
}

type closingHost struct {
	*recordingHost
	i *Instance
}

func (h *closingHost) Cast(out, p []byte) { h.i.Close() }

type reenteringHost struct {
	*recordingHost
	i   *Instance
	err *error
}

func (h *reenteringHost) Cast(out, p []byte) { *h.err = h.i.Cast(srcID, []byte("c")) }

func TestCloseIdempotent(t *testing.T) {
	r := newRuntime(t, Config{})
	i, err := r.Instantiate(load(t, r, wat(t, noopWAT)), &recordingHost{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err == nil {
		t.Fatal("runtime closed with an instance open")
	}
	i.Close()
	i.Close()
	if err := i.Cast(srcID, nil); !errors.Is(err, ErrDead) {
		t.Fatalf("Cast after Close: %v, want ErrDead", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestInstantiateMemoryLimit(t *testing.T) {
	r := newRuntime(t, Config{MaxMemoryBytes: 2 << 16})
	big := strings.Replace(noopWAT, `(memory (export "memory") 1)`, `(memory (export "memory") 3)`, 1)
	_, err := r.Load(wat(t, big))
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("loading a module whose initial memory exceeds the limit: %v", err)
	}
}

func TestInitializeTrap(t *testing.T) {
	r := newRuntime(t, Config{})
	src := strings.Replace(noopWAT, `(func (export "handle_stop_asm"))`,
		`(func (export "handle_stop_asm")) (func (export "_initialize") unreachable)`, 1)
	_, err := r.Instantiate(load(t, r, wat(t, src)), &recordingHost{})
	var trap *Trap
	if !errors.As(err, &trap) || trap.Export != "_initialize" || !strings.Contains(trap.Message, "unreachable") {
		t.Fatalf("got %v, want a trap in _initialize", err)
	}
	// The failed instance was released: the runtime closes cleanly.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestInstanceMemoryLimit: an instance created with a limit of its own runs
// out of memory at that limit, while the runtime's limit still holds for
// the others.
func TestInstanceMemoryLimit(t *testing.T) {
	r := newRuntime(t, Config{MaxMemoryBytes: 8 << 20, HandlerTimeout: time.Second})
	m := load(t, r, abiGuest(t))
	small, err := r.InstantiateLimit(m, &recordingHost{self: selfID}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	err = small.Cast(srcID, []byte("G"))
	var trap *Trap
	if !errors.As(err, &trap) || !errors.Is(err, ErrOutOfMemory) || !strings.Contains(trap.Message, "1048576 bytes") {
		t.Fatalf("Cast growing past 1 MiB: %v, want out of memory at 1048576 bytes", err)
	}
	// The guest grows until refused: the other instance gets to 8 MiB.
	big := instantiate(t, r, m, &recordingHost{self: selfID})
	if err := big.Cast(srcID, []byte("G")); !errors.As(err, &trap) || !strings.Contains(trap.Message, "8388608 bytes") {
		t.Fatalf("instance with the runtime's limit: %v, want out of memory at 8388608 bytes", err)
	}
}
