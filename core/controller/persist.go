package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"sync"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
)

// The controller keeps the admitted workflows on disk in two files: a
// snapshot (persistence_filename) and a journal of the changes since
// (persistence_filename.journal), each change one line appended and synced
// before the API answers. A change costs its own size, not the size of all
// the workflows; the journal is folded into a new snapshot when it has grown
// past twice the workflows, and at every start.

// saved is the snapshot: the admitted workflows and the nonce of each domain
// they run in, so that after a restart the controller re-adopts a domain
// that kept running instead of resetting it.
type saved struct {
	Domains   map[string]uint64 `json:"domains"` // domain → nonce
	Workflows []*workflow       `json:"workflows"`
	// Compositions by name.
	Compositions map[string]*spec.Composition `json:"compositions,omitempty"`
}

// change is one record of the journal: a workflow put (started, moved) or
// deleted, or a composition set or deleted, with the domains' nonces then.
type change struct {
	Domains     map[string]uint64 `json:"domains"`
	Put         *workflow         `json:"put,omitempty"`
	Delete      core.ID           `json:"delete,omitzero"`
	Composition string            `json:"composition,omitempty"`
	Spec        *spec.Composition `json:"spec,omitempty"` // nil with Composition: deleted
}

// store is where the controller's changes go, in the order they happened.
type store struct {
	mu       sync.Mutex // serialises changes; taken before Con.mu, never inside it
	snapshot string
	journal  journal
}

// load reads the snapshot and replays the journal; the workflows come back
// not running until their domain registers again. Then it folds them into a
// new snapshot and opens the journal for the changes to come.
func (c *Con) load() error {
	if c.cfg.PersistenceFilename == "" {
		return nil
	}
	st := &store{snapshot: c.cfg.PersistenceFilename, journal: journal{path: c.cfg.PersistenceFilename + ".journal", sync: true}}
	var s saved
	data, err := os.ReadFile(st.snapshot)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot read %s: %w", st.snapshot, err)
	}
	if err == nil {
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("cannot read %s: %w", st.snapshot, err)
		}
	}
	workflows := map[core.ID]*workflow{}
	for _, wf := range s.Workflows {
		workflows[wf.ID] = wf
	}
	if s.Compositions == nil {
		s.Compositions = map[string]*spec.Composition{}
	}
	changes := 0
	err = st.journal.replay(func(line []byte) error {
		var ch change
		if err := json.Unmarshal(line, &ch); err != nil {
			return err
		}
		changes++
		s.Domains = ch.Domains
		switch {
		case ch.Put != nil:
			workflows[ch.Put.ID] = ch.Put
		case !ch.Delete.IsZero():
			delete(workflows, ch.Delete)
		case ch.Spec != nil:
			s.Compositions[ch.Composition] = ch.Spec
		case ch.Composition != "":
			delete(s.Compositions, ch.Composition)
		}
		return nil
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	for d, nonce := range s.Domains {
		c.known[d] = nonce
	}
	for name, m := range s.Compositions {
		c.compositions[name] = m
	}
	for _, wf := range workflows {
		if wf.Spec == nil || wf.ID.IsZero() {
			c.mu.Unlock()
			return fmt.Errorf("cannot read %s: a workflow without id or specification", st.snapshot)
		}
		wf.Spec.File = st.snapshot
		c.workflows[wf.ID] = wf
		if err := c.claimLocked(wf); err != nil {
			c.log.Warn("restored workflow claims a taken ingress host", "workflow", wf.ID, "err", err)
		}
	}
	c.mu.Unlock()
	c.store = st
	st.mu.Lock()
	defer st.mu.Unlock()
	if err := c.foldLocked(); err != nil {
		return err
	}
	c.log.Info("workflows restored", "file", st.snapshot, "workflows", len(workflows), "changes_replayed", changes)
	return nil
}

// persist journals ch. A change that a later one overtook (a put of a
// workflow deleted meanwhile, a composition set or deleted again) is
// dropped: the later one is journaled after it. A failure is logged, as the
// workflows keep running either way.
func (c *Con) persist(ch change) {
	st := c.store
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	c.mu.Lock()
	overtaken := ch.Put != nil && c.workflows[ch.Put.ID] != ch.Put ||
		ch.Composition != "" && c.compositions[ch.Composition] != ch.Spec
	if overtaken {
		c.mu.Unlock()
		return
	}
	ch.Domains = maps.Clone(c.known)
	live := len(c.workflows) + len(c.compositions)
	// Encoded under the lock: the workflow's domain and copies change
	// under it.
	err := st.journal.append(&ch)
	c.mu.Unlock()
	if err == nil && st.journal.outgrown(live) {
		err = c.foldLocked()
	}
	if err != nil {
		c.log.Error("cannot save the workflows", "file", st.snapshot, "err", err)
	}
}

// foldLocked writes the state into a new snapshot and empties the journal.
// A crash between the two leaves changes the new snapshot already holds,
// which replay the same state again. st.mu is held.
func (c *Con) foldLocked() error {
	c.mu.Lock()
	s := saved{Domains: maps.Clone(c.known), Workflows: slices.Collect(maps.Values(c.workflows)), Compositions: c.compositions}
	data, err := json.Marshal(&s)
	c.mu.Unlock()
	if err == nil {
		err = core.WriteFileAtomic(c.store.snapshot, data)
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", c.store.snapshot, err)
	}
	return c.store.journal.rewrite(nil, 0)
}

// asyncPath names the journal of asynchronous results kept beside the
// persistence file, or "" when nothing persists.
func asyncPath(persistence string) string {
	if persistence == "" {
		return ""
	}
	return persistence + ".async"
}
