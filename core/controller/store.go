package controller

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
)

// store keeps the controller's state in three places beside each other,
// persistence_filename being P:
//
//   - P, a snapshot: every workflow (its code by hash), composition and
//     domain nonce as of the last compaction, written atomically;
//   - P.journal, the changes since, one framed record each (length, CRC-32C,
//     JSON), appended and synced before the request that made the change is
//     answered: a start costs one append and one sync, however many
//     workflows there are, and requests that arrive together share them;
//   - P.code/HASH, the function code, one file per content (SHA-256),
//     written and synced before the first record that refers to it.
//
// A record holds the whole new value of what it changes (a workflow, a
// composition, the nonces), so replaying the journal over a snapshot that
// already holds some of it gives the same state: a crash between writing a
// snapshot and emptying the journal loses nothing. A record cut short by a
// crash, the journal's tail, is ignored (and cut off) with a warning. When
// the journal outgrows the snapshot (and 1 MiB), the next write compacts:
// it writes a new snapshot, empties the journal and removes the code no
// workflow refers to any more; so each change costs O(1) writes amortised.
//
// A single goroutine (run) writes; the controller hands it changes under
// Con.mu (submit), so that they reach the journal in the order they were
// made, and waits for the outcome outside the lock.
type store struct {
	path    string
	codeDir string
	log     *slog.Logger

	// Owned by run once started (by the opener before).
	journal   *os.File // nil until the first record, or after a failed write
	size      int64    // bytes of whole records in the journal
	snapSize  int64    // bytes of the snapshot
	have      map[string]bool
	pending   map[string][]byte // code to write that no file holds yet
	workflows map[core.ID]storedWorkflow
	comps     map[string]json.RawMessage
	domains   json.RawMessage
	dirty     bool // a write failed: compact before the next record

	mu      sync.Mutex
	queue   []*change
	started bool
	closed  bool
	wake    chan struct{}
	done    chan struct{} // closed when run returns
}

// storedWorkflow is a workflow's record as written, and the code it needs.
type storedWorkflow struct {
	raw  json.RawMessage
	code []string
}

// change is one record of the journal: a workflow put (Record) or deleted
// (no Record), a composition put (Spec) or deleted, and the domains' nonces
// as they are now.
type change struct {
	Workflow    core.ID         `json:"workflow,omitzero"`
	Record      json.RawMessage `json:"record,omitempty"`
	Composition string          `json:"composition,omitempty"`
	Spec        json.RawMessage `json:"spec,omitempty"`
	Domains     json.RawMessage `json:"domains,omitempty"`

	code  []string          // the hashes Record refers to
	blobs map[string][]byte // and their content
	done  chan error
}

// snapshotFormat marks the snapshot of this format; the save file of before
// has no format field.
const snapshotFormat = 2

type snapshotFile struct {
	Format       int                        `json:"format"`
	Domains      json.RawMessage            `json:"domains"`
	Workflows    []json.RawMessage          `json:"workflows"`
	Compositions map[string]json.RawMessage `json:"compositions,omitempty"`
}

// restored is the state read back at start.
type restored struct {
	domains      map[string]uint64
	workflows    []*wfRecord
	compositions map[string]*spec.Composition
	migrate      bool // the file is in the format of before: compact before anything else
}

// Journal framing: a record is its length (4 bytes, big-endian), the
// CRC-32C of its body (4 bytes) and its body.
const (
	frameHeader = 8
	maxRecord   = 1 << 30
	// compactAfter is the least journal size that triggers a compaction.
	compactAfter = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// openStore reads the snapshot and the journal at path and returns the store,
// not yet writing, and what it holds.
func openStore(path string, log *slog.Logger) (*store, *restored, error) {
	s := &store{path: path, codeDir: path + ".code", log: log, have: map[string]bool{}, pending: map[string][]byte{},
		workflows: map[core.ID]storedWorkflow{}, comps: map[string]json.RawMessage{}, domains: json.RawMessage("{}"),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	st, err := s.readSnapshot()
	if err != nil {
		return nil, nil, err
	}
	if err := s.listCode(); err != nil {
		return nil, nil, err
	}
	corrupt, err := s.replay()
	if err != nil {
		return nil, nil, err
	}
	if corrupt {
		st.migrate = true // rewrite what was read, past the damage
	}
	// The state, as replayed.
	st.workflows = st.workflows[:0]
	for _, w := range s.workflows {
		var r wfRecord
		if err := json.Unmarshal(w.raw, &r); err != nil {
			return nil, nil, fmt.Errorf("cannot read %s: %w", path, err)
		}
		if bin := st.inline[r.ID]; bin != nil { // the format of before: the code is here
			for i := range r.Spec.Functions {
				r.Spec.Functions[i].ClassSpecification.Binary = bin[i]
			}
		}
		st.workflows = append(st.workflows, &r)
	}
	st.domains = map[string]uint64{}
	if err := json.Unmarshal(s.domains, &st.domains); err != nil {
		return nil, nil, fmt.Errorf("cannot read the domains of %s: %w", path, err)
	}
	st.compositions = map[string]*spec.Composition{}
	for name, raw := range s.comps {
		var m spec.Composition
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, nil, fmt.Errorf("cannot read composition %q of %s: %w", name, path, err)
		}
		st.compositions[name] = &m
	}
	return s, &st.restored, nil
}

// snapshotRead is the state of the snapshot while the journal is replayed.
type snapshotRead struct {
	restored
	inline map[core.ID][][]byte // the code of the format of before, by workflow
}

// readSnapshot reads P into the store's state. The format of before holds
// the workflows with their code: they are turned into records and code to
// write.
func (s *store) readSnapshot() (*snapshotRead, error) {
	st := &snapshotRead{inline: map[core.ID][][]byte{}}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", s.path, err)
	}
	s.snapSize = int64(len(data))
	var snap snapshotFile
	if err := json.Unmarshal(data, &snap); err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", s.path, err)
	}
	if snap.Format == 0 {
		return st, s.readOld(data, st)
	}
	if snap.Format != snapshotFormat {
		return nil, fmt.Errorf("cannot read %s: format %d, this controller reads %d", s.path, snap.Format, snapshotFormat)
	}
	if len(snap.Domains) > 0 {
		s.domains = snap.Domains
	}
	for _, raw := range snap.Workflows {
		if err := s.putWorkflow(raw); err != nil {
			return nil, fmt.Errorf("cannot read %s: %w", s.path, err)
		}
	}
	for name, raw := range snap.Compositions {
		s.comps[name] = raw
	}
	return st, nil
}

// readOld reads the save file of before: {"domains", "workflows" with their
// code, "compositions"}.
func (s *store) readOld(data []byte, st *snapshotRead) error {
	var old struct {
		Domains      map[string]uint64          `json:"domains"`
		Workflows    []*wfRecord                `json:"workflows"`
		Compositions map[string]json.RawMessage `json:"compositions"`
	}
	if err := json.Unmarshal(data, &old); err != nil {
		return fmt.Errorf("cannot read %s: %w", s.path, err)
	}
	st.migrate = true
	domains, err := json.Marshal(old.Domains)
	if err != nil {
		return err
	}
	s.domains = domains
	for _, r := range old.Workflows {
		if r == nil || r.Spec == nil || r.ID.IsZero() {
			return fmt.Errorf("cannot read %s: a workflow without id or specification", s.path)
		}
		bins := make([][]byte, len(r.Spec.Functions))
		r.Code = make([]string, len(r.Spec.Functions))
		for i := range r.Spec.Functions {
			cs := &r.Spec.Functions[i].ClassSpecification
			if len(cs.Binary) > 0 {
				sum := sha256.Sum256(cs.Binary)
				r.Code[i] = hex.EncodeToString(sum[:])
				s.pending[r.Code[i]] = cs.Binary
			}
			bins[i], cs.Binary = cs.Binary, nil
		}
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		s.workflows[r.ID] = storedWorkflow{raw: raw, code: r.Code}
		st.inline[r.ID] = bins
	}
	for name, raw := range old.Compositions {
		s.comps[name] = raw
	}
	return nil
}

// putWorkflow adds a workflow's record to the state.
func (s *store) putWorkflow(raw json.RawMessage) error {
	var r struct {
		ID   core.ID  `json:"id"`
		Code []string `json:"code"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return err
	}
	if r.ID.IsZero() {
		return errors.New("a workflow without id")
	}
	s.workflows[r.ID] = storedWorkflow{raw: raw, code: r.Code}
	return nil
}

// apply makes a journal record part of the state.
func (s *store) apply(ch *change) error {
	switch {
	case !ch.Workflow.IsZero() && len(ch.Record) == 0:
		delete(s.workflows, ch.Workflow)
	case !ch.Workflow.IsZero():
		if err := s.putWorkflow(ch.Record); err != nil {
			return err
		}
	}
	switch {
	case ch.Composition != "" && len(ch.Spec) == 0:
		delete(s.comps, ch.Composition)
	case ch.Composition != "":
		s.comps[ch.Composition] = ch.Spec
	}
	if len(ch.Domains) > 0 {
		s.domains = ch.Domains
	}
	return nil
}

// listCode notes which code files exist, and removes temporary files a crash
// left.
func (s *store) listCode() error {
	entries, err := os.ReadDir(s.codeDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", s.codeDir, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			os.Remove(filepath.Join(s.codeDir, e.Name()))
			continue
		}
		s.have[e.Name()] = true
	}
	return nil
}

// replay applies the journal's records to the state. A record cut short at
// the end, as a crash while appending leaves it, is ignored and cut off;
// damage before the end stops the replay there, and the journal is kept
// aside (corrupt reports it, for the caller to compact).
func (s *store) replay() (corrupt bool, err error) {
	name := s.path + ".journal"
	data, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cannot read %s: %w", name, err)
	}
	off, records := 0, 0
	var bad string
	for off < len(data) {
		rest := data[off:]
		if len(rest) < frameHeader {
			bad = "a record header cut short"
			break
		}
		n := binary.BigEndian.Uint32(rest)
		if n > maxRecord {
			bad = fmt.Sprintf("a record of %d bytes", n)
			break
		}
		if len(rest) < frameHeader+int(n) {
			bad = "a record cut short"
			break
		}
		body := rest[frameHeader : frameHeader+int(n)]
		if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(rest[4:]) {
			bad = "a record whose checksum does not match"
			break
		}
		var ch change
		if err := json.Unmarshal(body, &ch); err != nil {
			bad = "a record that does not decode: " + err.Error()
			break
		}
		if err := s.apply(&ch); err != nil {
			bad = "a record that does not decode: " + err.Error()
			break
		}
		off += frameHeader + int(n)
		records++
	}
	switch {
	case bad == "":
	case s.tail(data, off):
		s.log.Warn("ignoring the last record of the journal, cut short (the controller stopped while writing it)",
			"file", name, "records", records, "ignored_bytes", len(data)-off, "why", bad)
		if err := os.Truncate(name, int64(off)); err != nil {
			return false, fmt.Errorf("cannot cut the torn record off %s: %w", name, err)
		}
	default:
		aside := name + ".damaged"
		s.log.Error("the journal is damaged before its end: the records after the damage are lost; it is kept aside",
			"file", name, "records", records, "offset", off, "ignored_bytes", len(data)-off, "why", bad, "kept_as", aside)
		if err := os.Rename(name, aside); err != nil {
			return false, fmt.Errorf("cannot move the damaged %s aside: %w", name, err)
		}
		return true, nil
	}
	s.size = int64(off)
	return false, nil
}

// tail reports whether the bytes of data from off, which do not make a
// whole valid record, are what a crash in the middle of the last append
// leaves: a single record, whose length reaches the end or beyond. An
// append writes the header and body of its records at once, so anything
// else is damage.
func (s *store) tail(data []byte, off int) bool {
	rest := data[off:]
	if len(rest) < frameHeader {
		return true
	}
	n := binary.BigEndian.Uint32(rest)
	return n <= maxRecord && frameHeader+int(n) >= len(rest)
}

// blob reads the code of hash.
func (s *store) blob(hash string) ([]byte, error) {
	// The name comes from a record on disk: only a SHA-256 in hex names a
	// file of the code directory.
	if raw, err := hex.DecodeString(hash); err != nil || len(raw) != sha256.Size || strings.ToLower(hash) != hash {
		return nil, fmt.Errorf("a record names code %q, which is not a SHA-256 in lower-case hex", hash)
	}
	b, err := os.ReadFile(filepath.Join(s.codeDir, hash))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != hash {
		return nil, fmt.Errorf("the code file %s does not hold what its name says", hash)
	}
	return b, nil
}

// start begins writing the changes submitted.
func (s *store) start() {
	s.mu.Lock()
	s.started = true
	s.mu.Unlock()
	go s.run()
}

// submit queues a change and returns where its outcome arrives. The caller
// holds Con.mu, so that changes are written in the order they were made.
func (s *store) submit(ch *change) <-chan error {
	ch.done = make(chan error, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ch.done <- errStoreClosed
		return ch.done
	}
	s.queue = append(s.queue, ch)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return ch.done
}

// close writes what is queued and stops.
func (s *store) close() error {
	s.mu.Lock()
	started := s.started
	s.closed = true
	s.mu.Unlock()
	if started {
		select {
		case s.wake <- struct{}{}:
		default:
		}
		<-s.done
	}
	if s.journal != nil {
		err := s.journal.Close()
		s.journal = nil
		return err
	}
	return nil
}

// run writes the changes queued, all those queued at once in one append
// and one sync, until close.
func (s *store) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		batch, closed := s.queue, s.closed
		s.queue = nil
		s.mu.Unlock()
		if len(batch) > 0 {
			err := s.commit(batch)
			for _, ch := range batch {
				ch.done <- err
			}
			continue
		}
		if closed {
			return
		}
		<-s.wake
	}
}

// commit writes a batch of changes: the code they need that no file holds,
// then their records, in one append, then syncs. On failure the changes are
// still made part of the state, and the next batch compacts first, so that
// they reach the disk then.
func (s *store) commit(batch []*change) error {
	for _, ch := range batch {
		for _, h := range ch.code {
			if h != "" && !s.have[h] {
				s.pending[h] = ch.blobs[h]
			}
		}
	}
	var buf bytes.Buffer
	for _, ch := range batch {
		body, err := json.Marshal(ch)
		if err != nil {
			panic("BUG: a journal record does not marshal: " + err.Error())
		}
		var head [frameHeader]byte
		binary.BigEndian.PutUint32(head[:], uint32(len(body)))
		binary.BigEndian.PutUint32(head[4:], crc32.Checksum(body, castagnoli))
		buf.Write(head[:])
		buf.Write(body)
		if err := s.apply(ch); err != nil {
			panic("BUG: a journal record does not apply: " + err.Error())
		}
	}
	if s.dirty || s.size > max(compactAfter, s.snapSize) {
		return s.compact() // holds the batch too
	}
	err := s.writeCode()
	if err == nil {
		err = s.appendJournal(buf.Bytes())
	}
	if err != nil {
		s.dirty = true
		return err
	}
	return nil
}

// writeCode writes the code files pending, then syncs their directory.
func (s *store) writeCode() error {
	if len(s.pending) == 0 {
		return nil
	}
	if err := os.MkdirAll(s.codeDir, 0o700); err != nil {
		return err
	}
	for h, b := range s.pending {
		if err := core.WriteFileAtomic(filepath.Join(s.codeDir, h), b); err != nil {
			return fmt.Errorf("cannot write code %s: %w", h, err)
		}
		s.have[h] = true
		delete(s.pending, h)
	}
	return syncDir(s.codeDir)
}

// appendJournal appends whole records and syncs them; on failure it cuts
// off what it may have written.
func (s *store) appendJournal(records []byte) error {
	name := s.path + ".journal"
	if s.journal == nil {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("cannot open %s: %w", name, err)
		}
		if err := syncDir(filepath.Dir(name)); err != nil {
			f.Close()
			return err
		}
		s.journal = f
	}
	_, err := s.journal.Write(records)
	if err == nil {
		err = s.journal.Sync()
	}
	if err != nil {
		s.journal.Truncate(s.size)
		s.journal.Close()
		s.journal = nil
		return fmt.Errorf("cannot append to %s: %w", name, err)
	}
	s.size += int64(len(records))
	return nil
}

// compact writes the state as the new snapshot, empties the journal and
// removes the code files no workflow refers to.
func (s *store) compact() error {
	if err := s.writeCode(); err != nil {
		s.dirty = true
		return err
	}
	snap := snapshotFile{Format: snapshotFormat, Domains: s.domains, Workflows: make([]json.RawMessage, 0, len(s.workflows)),
		Compositions: s.comps}
	used := map[string]bool{}
	for _, w := range s.workflows {
		snap.Workflows = append(snap.Workflows, w.raw)
		for _, h := range w.code {
			used[h] = true
		}
	}
	data, err := json.Marshal(&snap)
	if err != nil {
		panic("BUG: the snapshot does not marshal: " + err.Error())
	}
	if err := core.WriteFileAtomic(s.path, data); err == nil {
		err = syncDir(filepath.Dir(s.path))
	}
	if err == nil {
		err = s.emptyJournal()
	}
	if err != nil {
		s.dirty = true
		return fmt.Errorf("cannot write %s: %w", s.path, err)
	}
	s.dirty, s.snapSize = false, int64(len(data))
	for h := range s.have {
		if !used[h] {
			if err := os.Remove(filepath.Join(s.codeDir, h)); err == nil || errors.Is(err, fs.ErrNotExist) {
				delete(s.have, h)
			}
		}
	}
	return nil
}

// emptyJournal truncates the journal, once the snapshot holds what it held.
func (s *store) emptyJournal() error {
	name := s.path + ".journal"
	if s.journal == nil {
		err := os.Truncate(name, 0)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err == nil {
			s.size = 0
		}
		return err
	}
	err := s.journal.Truncate(0)
	if err == nil {
		err = s.journal.Sync()
	}
	if err != nil {
		s.journal.Close()
		s.journal = nil
		return err
	}
	s.size = 0
	return nil
}

// syncDir makes the names created or renamed in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
