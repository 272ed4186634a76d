package sandbox

import (
	"crypto/sha256"
	"testing"

	"github.com/edgeless-go/edgeless/core"
)

// echoWAT answers a call with its own payload and forwards a cast's payload
// to output "o" through cast_asm.
const echoWAT = `(module
  (import "env" "cast_asm" (func $cast (param i32 i32 i32 i32)))
  (data (i32.const 16) "o")` + noopExports + castOnWAT + `
  (func (export "handle_call_asm") (param i32 i32 i32 i32 i32 i32) (result i32)
    local.get 4
    local.get 2
    i32.store
    local.get 5
    local.get 3
    i32.store
    i32.const 1))`

// castOnWAT is a handle_cast_asm that casts its payload to the output whose
// one-byte name is at address 16.
const castOnWAT = `
  (func (export "handle_cast_asm") (param i32 i32 i32 i32)
    i32.const 16
    i32.const 1
    local.get 2
    local.get 3
    call $cast)`

// nullHost does nothing, to measure the sandbox alone.
type nullHost struct{}

func (nullHost) Cast(out, p []byte)                                     {}
func (nullHost) CastRaw(core.InstanceID, []byte)                        {}
func (nullHost) Call(out, p []byte) (core.CallRet, []byte)              { return core.CallNoReply, nil }
func (nullHost) CallRaw(core.InstanceID, []byte) (core.CallRet, []byte) { return core.CallNoReply, nil }
func (nullHost) DelayedCast(int64, []byte, []byte)                      {}
func (nullHost) Sync([]byte)                                            {}
func (nullHost) TelemetryLog(int32, []byte, []byte)                     {}
func (nullHost) Self() core.InstanceID                                  { return core.InstanceID{} }

func benchInstance(b *testing.B, src string) *Instance {
	r := newRuntime(b, Config{})
	return instantiate(b, r, load(b, r, wat(b, src)), nullHost{})
}

func BenchmarkCast(b *testing.B) {
	i := benchInstance(b, noopWAT)
	payload := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if err := i.Cast(srcID, payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCastHostImport is a cast whose handler calls the host once.
func BenchmarkCastHostImport(b *testing.B) {
	i := benchInstance(b, echoWAT)
	payload := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if err := i.Cast(srcID, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCall(b *testing.B) {
	i := benchInstance(b, echoWAT)
	payload := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		ret, reply, err := i.Call(srcID, payload)
		if err != nil || ret != core.CallReply || len(reply) != 64 {
			b.Fatal(ret, len(reply), err)
		}
	}
}

func BenchmarkInstantiate(b *testing.B) {
	r := newRuntime(b, Config{})
	m := load(b, r, wat(b, noopWAT))
	b.ReportAllocs()
	for b.Loop() {
		i, err := r.Instantiate(m, nullHost{})
		if err != nil {
			b.Fatal(err)
		}
		i.Close()
	}
}

// forget drops every module from r's memory cache, so the next Load goes to
// disk or compiles.
func forget(r *Runtime) {
	for k, e := range r.modules {
		e.mod.free()
		delete(r.modules, k)
	}
}

func benchLoad(b *testing.B, dir string, guests map[string]func(testing.TB) []byte) {
	for name, guest := range guests {
		b.Run(name, func(b *testing.B) {
			code := guest(b)
			r := newRuntime(b, Config{CacheDir: dir})
			load(b, r, code) // fills the disk cache when dir is set
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				forget(r)
				b.StartTimer()
				if _, err := r.Load(code); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

var benchGuests = map[string]func(testing.TB) []byte{
	"wat": func(tb testing.TB) []byte { return wat(tb, noopWAT) },
	"c":   abiGuest,
	"go":  goReactor,
}

// BenchmarkLoadFromDisk loads a module with an empty memory cache from the
// artefact in CacheDir.
func BenchmarkLoadFromDisk(b *testing.B) { benchLoad(b, b.TempDir(), benchGuests) }

// BenchmarkLoadFromDiskHashed is BenchmarkLoadFromDisk with the module's
// hash known in advance, as the node has it from the control plane.
func BenchmarkLoadFromDiskHashed(b *testing.B) {
	code := goReactor(b)
	sum := sha256.Sum256(code)
	r := newRuntime(b, Config{CacheDir: b.TempDir()})
	load(b, r, code)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		forget(r)
		b.StartTimer()
		if _, err := r.LoadHashed(code, sum); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile loads a module the runtime has never seen.
func BenchmarkCompile(b *testing.B) { benchLoad(b, "", benchGuests) }
