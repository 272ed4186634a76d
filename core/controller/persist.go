package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
)

// saved is what the controller keeps on disk: the admitted workflows and the
// nonce of each domain they run in, so that after a restart it re-adopts a
// domain that kept running instead of resetting it.
type saved struct {
	Domains   map[string]uint64 `json:"domains"` // domain → nonce
	Workflows []*workflow       `json:"workflows"`
	// Compositions by name.
	Compositions map[string]*spec.Composition `json:"compositions,omitempty"`
}

// load reads the persistence file; the workflows come back not running until
// their domain registers again.
func (c *Con) load() error {
	if c.cfg.PersistenceFilename == "" {
		return nil
	}
	data, err := os.ReadFile(c.cfg.PersistenceFilename)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", c.cfg.PersistenceFilename, err)
	}
	var s saved
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("cannot read %s: %w", c.cfg.PersistenceFilename, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for d, nonce := range s.Domains {
		c.known[d] = nonce
	}
	for name, m := range s.Compositions {
		c.compositions[name] = m
	}
	for _, wf := range s.Workflows {
		if wf.Spec == nil || wf.ID.IsZero() {
			return fmt.Errorf("cannot read %s: a workflow without id or specification", c.cfg.PersistenceFilename)
		}
		wf.Spec.File = c.cfg.PersistenceFilename
		c.workflows[wf.ID] = wf
		if err := c.claimLocked(wf); err != nil {
			c.log.Warn("restored workflow claims a taken ingress host", "workflow", wf.ID, "err", err)
		}
	}
	c.log.Info("workflows restored", "file", c.cfg.PersistenceFilename, "workflows", len(s.Workflows))
	return nil
}

// save writes the persistence file atomically; a failure is logged, as the
// workflows keep running either way.
func (c *Con) save() {
	if c.cfg.PersistenceFilename == "" {
		return
	}
	c.mu.Lock()
	s := saved{Domains: map[string]uint64{}, Workflows: make([]*workflow, 0, len(c.workflows)), Compositions: c.compositions}
	for d, n := range c.known {
		s.Domains[d] = n
	}
	for _, wf := range c.workflows {
		s.Workflows = append(s.Workflows, wf)
	}
	data, err := json.Marshal(&s)
	c.mu.Unlock()
	if err == nil {
		err = core.WriteFileAtomic(c.cfg.PersistenceFilename, data)
	}
	if err != nil {
		c.log.Error("cannot save the workflows", "file", c.cfg.PersistenceFilename, "err", err)
	}
}

// asyncPath names the journal of asynchronous results kept beside the
// persistence file, or "" when nothing persists.
func asyncPath(persistence string) string {
	if persistence == "" {
		return ""
	}
	return persistence + ".async"
}
