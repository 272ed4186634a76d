package controller

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

// asyncResults keeps the results of asynchronous invocations for ttl after
// they complete; then they are dropped and polling them says so. With a
// journal file, every start and result is appended to it, so that results
// survive a restart of the controller; an invocation that was running when
// the controller stopped is reported lost. With a shared store (Redis), every
// start and result is written there instead, so that any controller sharing
// it answers a poll. It also keeps the progress of workflow runs that
// stopped, for /workflow/resume, the same way (without the journal). It is
// safe for concurrent use.
type asyncResults struct {
	mu       sync.Mutex
	ttl      time.Duration
	max      int
	pending  map[string]*asyncEntry
	progress map[string]*progressEntry
	log      *slog.Logger
	shared   *sharedResults // nil without a shared store

	path    string   // the journal; "" keeps results in memory only
	journal *os.File // open for appending; nil without a journal
	lines   int      // records in the journal, for compaction
	failing bool     // the last journal write failed (logged once)

	// When the results and progress entries expire, in that order: every
	// entry's lifetime is ttl from its last write, so appending keeps them
	// ordered and expiring costs O(1) per entry rather than a scan.
	expiries, progressExpiries []expiry
}

// expiry is when the entry id expires, unless it was written again since.
type expiry struct {
	id string
	at time.Time
}

type asyncEntry struct {
	res     *invocation // nil while running
	expires time.Time
}

type progressEntry struct {
	data    []byte
	expires time.Time
}

// asyncRecord is one line of the journal: a start (Result nil) or a result.
type asyncRecord struct {
	ID      string      `json:"id"`
	Result  *invocation `json:"result,omitempty"`
	Expires time.Time   `json:"expires,omitzero"`
}

// errLost is the result of an invocation that ran while the controller
// stopped: its reply went to the process that is gone.
const errLost = "the controller restarted while this invocation ran; its result is lost"

func newAsyncResults(ttl time.Duration, max int, path string, shared *sharedResults, log *slog.Logger) *asyncResults {
	return &asyncResults{ttl: ttl, max: max, pending: map[string]*asyncEntry{}, progress: map[string]*progressEntry{},
		path: path, shared: shared, log: log}
}

// open replays the journal, if any, and opens it for appending.
func (a *asyncResults) open() error {
	if a.path == "" {
		return nil
	}
	data, err := os.ReadFile(a.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot read the asynchronous results %s: %w", a.path, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 256<<20)
	for sc.Scan() {
		var r asyncRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ID == "" {
			continue // a line cut short by a crash
		}
		a.pending[r.ID] = &asyncEntry{res: r.Result, expires: r.Expires}
	}
	now := time.Now()
	for id, e := range a.pending {
		if e.res == nil {
			e.res, e.expires = &invocation{Status: http.StatusServiceUnavailable, Error: errLost}, now.Add(a.ttl)
		}
		a.expiries = append(a.expiries, expiry{id, e.expires})
	}
	slices.SortFunc(a.expiries, func(x, y expiry) int { return x.at.Compare(y.at) })
	a.expireLocked()
	return a.compactLocked()
}

// compactLocked rewrites the journal with the entries kept now.
func (a *asyncResults) compactLocked() error {
	var buf bytes.Buffer
	for id, e := range a.pending {
		writeRecord(&buf, asyncRecord{ID: id, Result: e.res, Expires: e.expires})
	}
	if a.journal != nil {
		a.journal.Close()
		a.journal = nil
	}
	if err := core.WriteFileAtomic(a.path, buf.Bytes()); err != nil {
		return fmt.Errorf("cannot write the asynchronous results %s: %w", a.path, err)
	}
	f, err := os.OpenFile(a.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open the asynchronous results %s: %w", a.path, err)
	}
	a.journal, a.lines = f, len(a.pending)
	return nil
}

func writeRecord(buf *bytes.Buffer, r asyncRecord) {
	data, err := json.Marshal(&r)
	if err != nil {
		panic("BUG: an invocation does not marshal: " + err.Error())
	}
	buf.Write(data)
	buf.WriteByte('\n')
}

// appendLocked journals r; a failure is logged once until a write succeeds
// again, as the result stays pollable from memory either way.
func (a *asyncResults) appendLocked(r asyncRecord) {
	if a.journal == nil {
		return
	}
	var buf bytes.Buffer
	writeRecord(&buf, r)
	_, err := a.journal.Write(buf.Bytes())
	if err == nil {
		a.lines++
		if a.lines > 2*len(a.pending)+1024 {
			err = a.compactLocked()
		}
	}
	switch {
	case err != nil && !a.failing:
		a.log.Error("cannot keep asynchronous results across restarts", "file", a.path, "err", err)
		a.failing = true
	case err == nil:
		a.failing = false
	}
}

func (a *asyncResults) close() error {
	var errs []error
	if a.shared != nil {
		errs = append(errs, a.shared.close())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.journal != nil {
		errs = append(errs, a.journal.Close())
		a.journal = nil
	}
	return errors.Join(errs...)
}

func (a *asyncResults) add() (string, bool) {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	a.mu.Lock()
	a.expireLocked()
	a.evictLocked()
	full := len(a.pending) >= a.max
	if !full {
		a.pending[id] = &asyncEntry{}
		a.appendLocked(asyncRecord{ID: id})
	}
	a.mu.Unlock()
	if full {
		return "", false
	}
	a.shared.started(id)
	return id, true
}

func (a *asyncResults) done(id string, res invocation) {
	a.mu.Lock()
	e := a.pending[id]
	if e != nil {
		e.res, e.expires = &res, time.Now().Add(a.ttl)
		a.expiries = append(a.expiries, expiry{id, e.expires})
		a.appendLocked(asyncRecord{ID: id, Result: e.res, Expires: e.expires})
	}
	a.mu.Unlock()
	if e != nil {
		a.shared.done(id, &res)
	}
}

// get returns the result (nil while pending) and whether id is known: to
// this controller, or else to the shared store.
func (a *asyncResults) get(id string) (*invocation, bool) {
	a.mu.Lock()
	a.expireLocked()
	e, ok := a.pending[id]
	var res *invocation
	if ok {
		res = e.res // done writes it under a.mu
	}
	a.mu.Unlock()
	if ok {
		return res, true
	}
	return a.shared.get(id)
}

// saveProgress keeps the progress of a stopped workflow run for ttl.
func (a *asyncResults) saveProgress(id string, data []byte) {
	a.mu.Lock()
	e := &progressEntry{data: data, expires: time.Now().Add(a.ttl)}
	a.progress[id] = e
	a.progressExpiries = append(a.progressExpiries, expiry{id, e.expires})
	a.mu.Unlock()
	a.shared.saveProgress(id, data)
}

// dropProgress forgets the progress saved under id, if any.
func (a *asyncResults) dropProgress(id string) {
	a.mu.Lock()
	delete(a.progress, id)
	a.mu.Unlock()
	a.shared.dropProgress(id)
}

// loadProgress returns the progress saved under id: the shared store's,
// where another controller may have taken the run further, or this
// controller's when there is no store or it cannot answer.
func (a *asyncResults) loadProgress(id string) ([]byte, bool) {
	if data, ok, err := a.shared.loadProgress(id); err == nil {
		return data, ok
	}
	a.mu.Lock()
	a.expireLocked()
	e := a.progress[id]
	a.mu.Unlock()
	if e == nil {
		return nil, false
	}
	return e.data, true
}

// evictLocked drops finished results, the oldest first, until there is
// room for one more: only invocations still running refuse new ones, for
// new work matters more than a result kept beyond its caller's first polls.
func (a *asyncResults) evictLocked() {
	for len(a.pending) >= a.max && len(a.expiries) > 0 {
		x := a.expiries[0]
		a.expiries = a.expiries[1:]
		if e := a.pending[x.id]; e != nil && e.res != nil && e.expires.Equal(x.at) {
			delete(a.pending, x.id)
		}
	}
}

func (a *asyncResults) expireLocked() {
	now := time.Now()
	for len(a.expiries) > 0 && now.After(a.expiries[0].at) {
		id := a.expiries[0].id
		a.expiries = a.expiries[1:]
		if e := a.pending[id]; e != nil && e.res != nil && now.After(e.expires) {
			delete(a.pending, id)
		}
	}
	for len(a.progressExpiries) > 0 && now.After(a.progressExpiries[0].at) {
		id := a.progressExpiries[0].id
		a.progressExpiries = a.progressExpiries[1:]
		if e := a.progress[id]; e != nil && now.After(e.expires) {
			delete(a.progress, id)
		}
	}
}
