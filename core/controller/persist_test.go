package controller

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
)

// loaded returns a controller that has loaded the persistence file path.
func loaded(t *testing.T, path string) (*Con, error) {
	t.Helper()
	cfg := Default()
	cfg.PersistenceFilename = path
	cfg.TokensPath = ""
	cfg.TLS.Enabled = false
	cfg.ControllerURL = MustAPIURL("http://127.0.0.1:0")
	c, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, c.load()
}

// admit adds a workflow to c as a start does, and journals it.
func admit(c *Con, name string) *workflow {
	wf := &workflow{ID: core.NewID(), Domain: "d1", Started: time.Now().UTC(),
		Spec: &spec.Workflow{Annotations: map[string]string{"name": name}}}
	c.mu.Lock()
	c.workflows[wf.ID] = wf
	c.known["d1"] = 7
	c.mu.Unlock()
	c.persist(change{Put: wf})
	return wf
}

func lines(t *testing.T, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(data, []byte("\n"))
}

// TestPersistJournal: each change appends one line to the journal and leaves
// the snapshot as it is; a restart restores the workflows, compositions and
// nonces, folds them into the snapshot and empties the journal; a change
// that another overtook is not journaled.
func TestPersistJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controller.save")
	c, err := loaded(t, path)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("no snapshot after the first load: %v", err)
	}
	a, b, gone := admit(c, "a"), admit(c, "b"), admit(c, "gone")
	c.mu.Lock()
	delete(c.workflows, gone.ID)
	c.mu.Unlock()
	c.persist(change{Delete: gone.ID})
	c.persist(change{Put: gone}) // overtaken by the delete
	comp := &spec.Composition{DAG: &spec.DAG{}}
	c.mu.Lock()
	c.compositions["flow"] = comp
	c.mu.Unlock()
	c.persist(change{Composition: "flow", Spec: comp})
	if n := lines(t, path+".journal"); n != 5 {
		t.Fatalf("journal has %d lines, want 5 (3 puts, a delete, a composition)", n)
	}
	if now, _ := os.ReadFile(path); !bytes.Equal(now, snap) {
		t.Fatal("a change rewrote the snapshot")
	}
	c.Close()

	r, err := loaded(t, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.workflows) != 2 || r.workflows[a.ID] == nil || r.workflows[b.ID] == nil ||
		r.workflows[a.ID].Spec.Annotations["name"] != "a" || r.known["d1"] != 7 || r.compositions["flow"] == nil {
		t.Fatalf("restored %d workflows, nonces %v, compositions %v; want a and b, d1=7, flow", len(r.workflows), r.known, r.compositions)
	}
	if n := lines(t, path+".journal"); n != 0 {
		t.Fatalf("journal has %d lines after a load, want it folded into the snapshot", n)
	}
	r.Close()
	// The snapshot alone (the format before the journal) restores them too.
	os.Remove(path + ".journal")
	if r, err := loaded(t, path); err != nil || len(r.workflows) != 2 {
		t.Fatalf("snapshot alone: %v, %d workflows", err, len(r.workflows))
	}
}

// TestPersistTornJournal: a last line cut short by a crash is skipped; a
// damaged line before others is an error naming the file and the line.
func TestPersistTornJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "controller.save")
	c, err := loaded(t, path)
	if err != nil {
		t.Fatal(err)
	}
	wf := admit(c, "kept")
	c.Close()
	f, err := os.OpenFile(path+".journal", os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"domains":{},"put":{"id":"`)
	f.Close()
	r, err := loaded(t, path)
	if err != nil || len(r.workflows) != 1 || r.workflows[wf.ID] == nil {
		t.Fatalf("torn last line: %v, %d workflows, want the one before it", err, len(r.workflows))
	}
	r.Close()

	os.WriteFile(path+".journal", []byte("{\"domains\":\n{}\n"), 0o600)
	_, err = loaded(t, path)
	if err == nil || !strings.Contains(err.Error(), "controller.save.journal: line 1") {
		t.Fatalf("damaged line 1 of 2: %v, want an error naming it", err)
	}
}
