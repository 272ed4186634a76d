package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"

	wasmtime "github.com/bytecodealliance/wasmtime-go/v39"
)

func TestModuleCache(t *testing.T) {
	dir := t.TempDir()
	code := abiGuest(t)
	sum := sha256.Sum256(code)
	artefact := filepath.Join(dir, hex.EncodeToString(sum[:])+".cwasm")

	works := func(r *Runtime, m *Module) {
		t.Helper()
		h := &recordingHost{}
		i := instantiate(t, r, m, h)
		if err := i.Cast(srcID, []byte("cok")); err != nil {
			t.Fatal(err)
		}
		if got := h.take(); len(got) != 1 || string(got[0].Data) != "ok" {
			t.Fatalf("host got %+v", got)
		}
	}
	stats := func(r *Runtime, want CacheStats) {
		t.Helper()
		if got := r.CacheStats(); got != want {
			t.Fatalf("cache stats %+v, want %+v", got, want)
		}
	}

	r1 := newRuntime(t, Config{CacheDir: dir})
	m1 := load(t, r1, code)
	stats(r1, CacheStats{Compiles: 1})
	if _, err := os.Stat(artefact); err != nil {
		t.Fatalf("no artefact after compiling: %v", err)
	}
	if m := load(t, r1, code); m != m1 {
		t.Fatal("second Load returned another module")
	}
	stats(r1, CacheStats{Compiles: 1, MemoryHits: 1})
	works(r1, m1)

	// A new runtime finds the artefact and does not compile.
	r2 := newRuntime(t, Config{CacheDir: dir})
	works(r2, load(t, r2, code))
	stats(r2, CacheStats{DiskHits: 1})

	// An artefact that is not one, or comes from another engine
	// configuration, is compiled again and replaced.
	other, err := wasmtime.NewModule(wasmtime.NewEngine(), code)
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{[]byte("garbage"), foreign} {
		// Replaced, not rewritten in place: earlier runtimes still map the
		// old file, and truncating a mapped file faults them.
		if err := os.WriteFile(artefact+".new", bad, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(artefact+".new", artefact); err != nil {
			t.Fatal(err)
		}
		r3 := newRuntime(t, Config{CacheDir: dir})
		works(r3, load(t, r3, code))
		stats(r3, CacheStats{Compiles: 1})
		r4 := newRuntime(t, Config{CacheDir: dir})
		works(r4, load(t, r4, code))
		stats(r4, CacheStats{DiskHits: 1})
	}

	if tmp, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(tmp) != 0 {
		t.Fatalf("temporary files left behind: %v", tmp)
	}
}

func TestModuleCacheMemoryOnly(t *testing.T) {
	r := newRuntime(t, Config{})
	code := wat(t, noopWAT)
	var wg sync.WaitGroup
	mods := make([]*Module, 4)
	for k := range mods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := r.Load(code)
			if err != nil {
				t.Error(err)
			}
			mods[k] = m
		}()
	}
	wg.Wait()
	for _, m := range mods[1:] {
		if m != mods[0] {
			t.Fatal("concurrent loads returned different modules")
		}
	}
	if got := r.CacheStats(); got != (CacheStats{Compiles: 1, MemoryHits: 3}) {
		t.Fatalf("cache stats %+v, want one compile and three memory hits", got)
	}
}
