package controller

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
)

// persistentCon returns a controller, not started, that keeps its state at
// path and has loaded what is there.
func persistentCon(t testing.TB, path string) *Con {
	t.Helper()
	c := newTestCon(t, func(cfg *Config) { cfg.PersistenceFilename = path })
	if err := c.load(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.closeStore() })
	return c
}

// testWorkflow returns a workflow of one function per code given.
func testWorkflow(domain string, code ...string) *workflow {
	w := &spec.Workflow{Annotations: map[string]string{}}
	wf := &workflow{ID: core.NewID(), Spec: w, Domain: domain, Started: time.Now().Round(0).UTC(), Logical: map[string]core.ID{}}
	for i, b := range code {
		name := "f" + strconv.Itoa(i)
		w.Functions = append(w.Functions, spec.Function{Name: name, ClassSpecification: spec.ClassSpec{ID: name,
			FunctionType: spec.FunctionTypeWASM, Version: "0.1", Binary: []byte(b), Outputs: []string{}},
			OutputMapping: map[string]string{}, Annotations: map[string]string{"k": "v"}})
		wf.Logical[name] = core.NewID()
	}
	return wf
}

// put admits wf as startWorkflow does, and waits until it is kept.
func put(c *Con, wf *workflow) {
	c.mu.Lock()
	c.workflows[wf.ID] = wf
	c.known[wf.Domain] = 42
	saved := c.persistPut(wf)
	c.mu.Unlock()
	c.saved(saved)
}

// remove stops wf's record as stopWorkflow does.
func remove(c *Con, id core.ID) {
	c.mu.Lock()
	delete(c.workflows, id)
	saved := c.persistDelete(id)
	c.mu.Unlock()
	c.saved(saved)
}

// sameWorkflows fails unless c holds exactly want, code included.
func sameWorkflows(t *testing.T, c *Con, want ...*workflow) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.workflows) != len(want) {
		t.Fatalf("%d workflows restored, want %d", len(c.workflows), len(want))
	}
	for _, w := range want {
		got := c.workflows[w.ID]
		if got == nil {
			t.Fatalf("workflow %s not restored", w.ID)
		}
		if got.Domain != w.Domain || !got.Started.Equal(w.Started) || len(got.Logical) != len(w.Logical) ||
			len(got.Spec.Functions) != len(w.Spec.Functions) {
			t.Fatalf("workflow %s restored as %+v, want %+v", w.ID, got, w)
		}
		for i, f := range w.Spec.Functions {
			g := got.Spec.Functions[i]
			if g.Name != f.Name || !bytes.Equal(g.ClassSpecification.Binary, f.ClassSpecification.Binary) ||
				g.Annotations["k"] != "v" || got.Logical[f.Name] != w.Logical[f.Name] {
				t.Fatalf("workflow %s, function %d restored as %+v, want %+v", w.ID, i, g, f)
			}
		}
	}
}

func TestStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controller.save")
	c := persistentCon(t, path)
	a, b, gone := testWorkflow("d1", "code A", "code B"), testWorkflow("d2", "code A"), testWorkflow("d1", "code C")
	for _, wf := range []*workflow{a, b, gone} {
		put(c, wf)
	}
	remove(c, gone.ID)
	c.mu.Lock()
	saved := c.persistComposition("comp", &spec.Composition{DAG: &spec.DAG{}})
	c.mu.Unlock()
	c.saved(saved)
	c.closeStore()

	// The code is kept once per content.
	entries, err := os.ReadDir(path + ".code")
	if err != nil || len(entries) != 3 {
		t.Fatalf("code files: %v, %v; want 3 (A, B, C until a compaction)", entries, err)
	}
	d := persistentCon(t, path)
	sameWorkflows(t, d, a, b)
	if d.compositions["comp"] == nil || d.compositions["comp"].DAG == nil {
		t.Fatalf("compositions restored: %v", d.compositions)
	}
	if d.known["d1"] != 42 || d.known["d2"] != 42 {
		t.Fatalf("domain nonces restored: %v", d.known)
	}
	// The workflows that share code share its bytes in memory.
	if &d.workflows[a.ID].Spec.Functions[0].ClassSpecification.Binary[0] != &d.workflows[b.ID].Spec.Functions[0].ClassSpecification.Binary[0] {
		t.Error("two workflows with the same code hold two copies of it")
	}
}

// TestStoreTornTail: a record cut short by a crash is ignored, with what
// came before it kept; the journal goes on after the last whole record.
func TestStoreTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controller.save")
	c := persistentCon(t, path)
	a, b := testWorkflow("d", "A"), testWorkflow("d", "B")
	put(c, a)
	put(c, b)
	c.closeStore()
	journal := path + ".journal"
	data, err := os.ReadFile(journal)
	if err != nil {
		t.Fatal(err)
	}
	// b's record is the last: cut it in the middle, as a crash would.
	whole := len(data)
	lastLen := 0
	for off := 0; off < whole; {
		n := int(uint32(data[off])<<24 | uint32(data[off+1])<<16 | uint32(data[off+2])<<8 | uint32(data[off+3]))
		lastLen, off = frameHeader+n, off+frameHeader+n
	}
	for _, cut := range []int{3, frameHeader + 5, lastLen - 1} {
		if err := os.WriteFile(journal, data[:whole-lastLen+cut], 0o600); err != nil {
			t.Fatal(err)
		}
		d := persistentCon(t, path)
		sameWorkflows(t, d, a)
		d.closeStore()
		if fi, _ := os.Stat(journal); fi.Size() != int64(whole-lastLen) {
			t.Fatalf("cut at %d: the journal holds %d bytes, want the %d of the whole records", cut, fi.Size(), whole-lastLen)
		}
	}
	// And it goes on from there.
	d := persistentCon(t, path)
	put(d, b)
	d.closeStore()
	sameWorkflows(t, persistentCon(t, path), a, b)
}

// TestStoreDamage: a record damaged before the end of the journal stops the
// replay there; the journal is kept aside and the state read so far is
// written as a new snapshot.
func TestStoreDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controller.save")
	c := persistentCon(t, path)
	a, b := testWorkflow("d", "A"), testWorkflow("d", "B")
	put(c, a)
	put(c, b)
	c.closeStore()
	journal := path + ".journal"
	data, _ := os.ReadFile(journal)
	n := int(uint32(data[0])<<24 | uint32(data[1])<<16 | uint32(data[2])<<8 | uint32(data[3]))
	data[frameHeader+n+frameHeader+10] ^= 0xff   // in b's record, which a's precedes
	data = append(data, data[:frameHeader+n]...) // and something after it
	os.WriteFile(journal, data, 0o600)
	d := persistentCon(t, path)
	sameWorkflows(t, d, a)
	if _, err := os.Stat(journal + ".damaged"); err != nil {
		t.Fatalf("the damaged journal was not kept aside: %v", err)
	}
	d.closeStore()
	sameWorkflows(t, persistentCon(t, path), a)
}

// TestStoreReplayOverSnapshot: records the snapshot already holds (a crash
// between writing it and emptying the journal) change nothing.
func TestStoreReplayOverSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controller.save")
	c := persistentCon(t, path)
	a, b := testWorkflow("d", "A"), testWorkflow("d", "B")
	put(c, a)
	put(c, b)
	remove(c, a.ID)
	c.closeStore()
	journal, _ := os.ReadFile(path + ".journal")
	s, _, err := openStore(path, c.log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.compact(); err != nil {
		t.Fatal(err)
	}
	s.close()
	os.WriteFile(path+".journal", journal, 0o600) // as if the crash came before the journal was emptied
	sameWorkflows(t, persistentCon(t, path), b)
}

// TestStoreMigrates: a controller that finds the save file of before (every
// workflow with its code, rewritten whole at each change) loads it and
// converts it.
func TestStoreMigrates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controller.save")
	a, b := testWorkflow("d", "shared", "A"), testWorkflow("d", "shared")
	old := map[string]any{"domains": map[string]uint64{"d": 7}, "workflows": []*workflow{a, b},
		"compositions": map[string]*spec.Composition{"comp": {DAG: &spec.DAG{}}}}
	data, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"binary":"`)) {
		t.Fatalf("the old format holds the code inline: %s", data)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c := persistentCon(t, path)
	sameWorkflows(t, c, a, b)
	if c.known["d"] != 7 || c.compositions["comp"] == nil {
		t.Fatalf("domains %v, compositions %v", c.known, c.compositions)
	}
	c.closeStore()
	snap, _ := os.ReadFile(path)
	if bytes.Contains(snap, []byte(`"binary"`)) || !bytes.Contains(snap, []byte(`"format":2`)) {
		t.Fatalf("the file was not converted: %.300s", snap)
	}
	if entries, _ := os.ReadDir(path + ".code"); len(entries) != 2 {
		t.Fatalf("%d code files, want 2 (shared, A)", len(entries))
	}
	d := persistentCon(t, path)
	sameWorkflows(t, d, a, b)
	if d.known["d"] != 7 || d.compositions["comp"] == nil {
		t.Fatalf("after the conversion: domains %v, compositions %v", d.known, d.compositions)
	}
}

// TestStoreCompacts: once the journal outgrows the snapshot and 1 MiB, a
// write compacts; code no workflow uses any more goes.
func TestStoreCompacts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controller.save")
	c := persistentCon(t, path)
	keep := testWorkflow("d", "kept")
	put(c, keep)
	big := string(bytes.Repeat([]byte("x"), 16<<10))
	for i := range 300 {
		wf := testWorkflow("d", "gone "+strconv.Itoa(i))
		wf.Spec.Annotations["pad"] = big
		put(c, wf)
		remove(c, wf.ID)
	}
	c.closeStore()
	fi, err := os.Stat(path + ".journal")
	if err != nil || fi.Size() > 2*compactAfter {
		t.Fatalf("journal: %v, %v; want it compacted", fi.Size(), err)
	}
	if entries, _ := os.ReadDir(path + ".code"); len(entries) > 100 {
		t.Fatalf("%d code files left of 301, most unused", len(entries))
	}
	sameWorkflows(t, persistentCon(t, path), keep)
}

// BenchmarkPersistStart is what keeping a started workflow costs the
// controller, among 0, 1 000 and 10 000 kept ones: the record, its append
// and sync (the code, 13 KB as noop's, is on disk already).
func BenchmarkPersistStart(b *testing.B) {
	code := string(bytes.Repeat([]byte("noop"), 13<<10/4))
	for _, n := range []int{0, 1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			c := persistentCon(b, filepath.Join(b.TempDir(), "controller.save"))
			var last <-chan error
			c.mu.Lock()
			for range n { // queued together: written in a few appends
				wf := testWorkflow("d", code)
				c.workflows[wf.ID] = wf
				last = c.persistPut(wf)
			}
			c.mu.Unlock()
			c.saved(last)
			b.ResetTimer()
			for b.Loop() {
				put(c, testWorkflow("d", code))
			}
		})
	}
}

// TestStoreCodeNames: a record's code name that is not a SHA-256 in hex
// reads no file, inside the code directory or out of it.
func TestStoreCodeNames(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "secret"), []byte("x"), 0o600)
	s := &store{codeDir: filepath.Join(dir, "code")}
	for _, name := range []string{"../secret", "", strings.Repeat("A", 64), strings.Repeat("0", 63) + "/"} {
		if _, err := s.blob(name); err == nil || !strings.Contains(err.Error(), "not a SHA-256") {
			t.Errorf("blob(%q) = %v, want the name refused", name, err)
		}
	}
}
