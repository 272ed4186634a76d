package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
)

// What the controller keeps on disk, so that a restarted controller knows
// every admitted workflow, every composition and the nonce of each domain
// they run in (it re-adopts a domain that kept running instead of resetting
// it). A change is durable when the API answers: the request that made it
// waits until its record is written and synced. See store for the files.

// wfRecord is a workflow as it is kept: the workflow's fields, its code by
// content hash. The format of before (a save file rewritten whole at each
// change) held the code inline, in Spec; it reads into this type as well.
type wfRecord struct {
	ID      core.ID            `json:"id"`
	Spec    *spec.Workflow     `json:"workflow"`
	Domain  string             `json:"domain"`
	Started time.Time          `json:"started"`
	Logical map[string]core.ID `json:"logical"`
	Cloud   *cloudCopy         `json:"cloud,omitempty"`
	// Code holds the SHA-256 (hex) of each function's code, in the order of
	// Spec.Functions; "" for one without code.
	Code []string `json:"code,omitempty"`
}

// codeHashes returns the hashes of wf's function code, computed once. c.mu
// must be held.
func (wf *workflow) codeHashes() []string {
	if len(wf.code) == len(wf.Spec.Functions) {
		return wf.code
	}
	wf.code = make([]string, len(wf.Spec.Functions))
	for i, f := range wf.Spec.Functions {
		if b := f.ClassSpecification.Binary; len(b) > 0 {
			sum := sha256.Sum256(b)
			wf.code[i] = hex.EncodeToString(sum[:])
		}
	}
	return wf.code
}

// recordOf returns wf's record, without its code, and the code by hash. c.mu
// must be held.
func recordOf(wf *workflow) (json.RawMessage, []string, map[string][]byte) {
	hashes := wf.codeHashes()
	sp := *wf.Spec
	sp.Functions = slices.Clone(wf.Spec.Functions)
	blobs := map[string][]byte{}
	for i := range sp.Functions {
		cs := &sp.Functions[i].ClassSpecification
		if hashes[i] != "" {
			blobs[hashes[i]] = cs.Binary
		}
		cs.Binary = nil
	}
	raw, err := json.Marshal(&wfRecord{ID: wf.ID, Spec: &sp, Domain: wf.Domain, Started: wf.Started, Logical: wf.Logical,
		Cloud: wf.Cloud, Code: hashes})
	if err != nil {
		panic("BUG: a workflow does not marshal: " + err.Error())
	}
	return raw, hashes, blobs
}

// knownLocked returns the domains' nonces as they are kept. c.mu must be held.
func (c *Con) knownLocked() json.RawMessage {
	raw, err := json.Marshal(c.known)
	if err != nil {
		panic("BUG: the domain nonces do not marshal: " + err.Error())
	}
	return raw
}

// persistPut records wf as it is now, with the domains' nonces, and returns
// what saved waits for. c.mu must be held: records are written in the order
// of the changes they describe.
func (c *Con) persistPut(wf *workflow) <-chan error {
	if c.store == nil {
		return nil
	}
	raw, hashes, blobs := recordOf(wf)
	return c.store.submit(&change{Workflow: wf.ID, Record: raw, Domains: c.knownLocked(), code: hashes, blobs: blobs})
}

// persistDelete records that workflow id is gone. c.mu must be held.
func (c *Con) persistDelete(id core.ID) <-chan error {
	if c.store == nil {
		return nil
	}
	return c.store.submit(&change{Workflow: id, Domains: c.knownLocked()})
}

// persistComposition records composition name, or that it is gone (nil).
// c.mu must be held.
func (c *Con) persistComposition(name string, comp *spec.Composition) <-chan error {
	if c.store == nil {
		return nil
	}
	ch := &change{Composition: name}
	if comp != nil {
		raw, err := json.Marshal(comp)
		if err != nil {
			panic("BUG: a composition does not marshal: " + err.Error())
		}
		ch.Spec = raw
	}
	return c.store.submit(ch)
}

// saved waits until the change behind done is on disk; a failure is logged,
// as the workflows keep running either way, and the next write tries to
// save everything again.
func (c *Con) saved(done <-chan error) {
	if done == nil {
		return
	}
	if err := <-done; err != nil {
		c.log.Error("cannot save the workflows", "file", c.cfg.PersistenceFilename, "err", err)
	}
}

// load opens the persistence files and restores what they hold; the
// workflows come back not running until their domain registers again.
func (c *Con) load() error {
	if c.cfg.PersistenceFilename == "" {
		return nil
	}
	s, st, err := openStore(c.cfg.PersistenceFilename, c.log)
	if err != nil {
		return err
	}
	code := map[string][]byte{} // one copy of each code, shared by the workflows that run it
	workflows := make([]*workflow, 0, len(st.workflows))
	for _, r := range st.workflows {
		if r.Spec == nil || r.ID.IsZero() {
			s.close()
			return fmt.Errorf("cannot read %s: a workflow without id or specification", c.cfg.PersistenceFilename)
		}
		r.Spec.File = c.cfg.PersistenceFilename
		for i, h := range r.Code {
			if h == "" || i >= len(r.Spec.Functions) || len(r.Spec.Functions[i].ClassSpecification.Binary) > 0 {
				continue // no code, or inline (the format of before)
			}
			b, ok := code[h]
			if !ok {
				if b, err = s.blob(h); err != nil {
					s.close()
					return fmt.Errorf("cannot read the code of workflow %s, function %s: %w", r.ID, r.Spec.Functions[i].Name, err)
				}
				code[h] = b
			}
			r.Spec.Functions[i].ClassSpecification.Binary = b
		}
		workflows = append(workflows, &workflow{ID: r.ID, Spec: r.Spec, Domain: r.Domain, Started: r.Started,
			Logical: r.Logical, Cloud: r.Cloud, code: r.Code})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for d, nonce := range st.domains {
		c.known[d] = nonce
	}
	for name, m := range st.compositions {
		c.compositions[name] = m
	}
	for _, wf := range workflows {
		c.workflows[wf.ID] = wf
		if err := c.claimLocked(wf); err != nil {
			c.log.Warn("restored workflow claims a taken ingress host", "workflow", wf.ID, "err", err)
		}
	}
	if st.migrate {
		// The save file of before: rewritten in this format, the code once
		// per content, and never rewritten whole again but on compaction.
		if err := s.compact(); err != nil {
			s.close()
			return fmt.Errorf("cannot convert %s to the journal format: %w", c.cfg.PersistenceFilename, err)
		}
		c.log.Info("persistence file converted to the journal format", "file", c.cfg.PersistenceFilename, "workflows", len(workflows))
	}
	c.store = s
	s.start()
	c.log.Info("workflows restored", "file", c.cfg.PersistenceFilename, "workflows", len(workflows))
	return nil
}

// closeStore writes what is queued and closes the persistence files.
func (c *Con) closeStore() error {
	if c.store == nil {
		return nil
	}
	return c.store.close()
}

// asyncPath names the journal of asynchronous results kept beside the
// persistence file, or "" when nothing persists.
func asyncPath(persistence string) string {
	if persistence == "" {
		return ""
	}
	return persistence + ".async"
}

var errStoreClosed = errors.New("the controller is stopping")
