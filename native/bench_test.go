package native

import (
	"testing"

	"github.com/edgeless-go/edgeless/core"
)

// nullHost does nothing, to measure the runtime alone.
type nullHost struct{}

func (nullHost) Cast(out, p []byte)                                     {}
func (nullHost) CastRaw(core.InstanceID, []byte)                        {}
func (nullHost) Call(out, p []byte) (core.CallRet, []byte)              { return core.CallNoReply, nil }
func (nullHost) CallRaw(core.InstanceID, []byte) (core.CallRet, []byte) { return core.CallNoReply, nil }
func (nullHost) DelayedCast(int64, []byte, []byte)                      {}
func (nullHost) Sync([]byte)                                            {}
func (nullHost) TelemetryLog(int32, []byte, []byte)                     {}
func (nullHost) Self() core.InstanceID                                  { return core.InstanceID{} }

// BenchmarkCast is the overhead of one handler call: Go to the noop
// function's handle_cast and back.
func BenchmarkCast(b *testing.B) {
	i := start(b, newRuntime(b), so(b, "noop"), nullHost{}, "")
	payload := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if err := i.Cast(srcID, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCastHostCall is a handler that makes one host call: incr parses
// the payload and casts the result.
func BenchmarkCastHostCall(b *testing.B) {
	i := start(b, newRuntime(b), so(b, "incr"), nullHost{}, "")
	payload := []byte("12345")
	b.ReportAllocs()
	for b.Loop() {
		if err := i.Cast(srcID, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCall is a call answered with a reply the host copies.
func BenchmarkCall(b *testing.B) {
	i := start(b, newRuntime(b), so(b, "double"), nullHost{}, "")
	payload := []byte("12345")
	b.ReportAllocs()
	for b.Loop() {
		ret, reply, err := i.Call(srcID, payload)
		if err != nil || ret != core.CallReply || string(reply) != "24690" {
			b.Fatal(ret, string(reply), err)
		}
	}
}

// BenchmarkInstantiate writes, loads, binds and unloads a library copy.
func BenchmarkInstantiate(b *testing.B) {
	r := newRuntime(b)
	m, err := r.Load(so(b, "noop"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		i, err := r.Instantiate(m, nullHost{})
		if err != nil {
			b.Fatal(err)
		}
		i.Close()
	}
}
