package controller

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"
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

	journal *journal // nil keeps results in memory only
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
	a := &asyncResults{ttl: ttl, max: max, pending: map[string]*asyncEntry{}, progress: map[string]*progressEntry{},
		shared: shared, log: log}
	if path != "" {
		// A result lost in a crash is reported lost; not worth an fsync
		// per invocation.
		a.journal = &journal{path: path}
	}
	return a
}

// open replays the journal, if any, and opens it for appending.
func (a *asyncResults) open() error {
	if a.journal == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	err := a.journal.replay(func(line []byte) error {
		var r asyncRecord
		if err := json.Unmarshal(line, &r); err != nil || r.ID == "" {
			return fmt.Errorf("not an asynchronous result: %.80s", line)
		}
		a.pending[r.ID] = &asyncEntry{res: r.Result, expires: r.Expires}
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot restore the asynchronous results: %w", err)
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
		if err := appendRecord(&buf, asyncRecord{ID: id, Result: e.res, Expires: e.expires}); err != nil {
			panic("BUG: an invocation does not marshal: " + err.Error())
		}
	}
	return a.journal.rewrite(buf.Bytes(), len(a.pending))
}

// appendLocked journals r; a failure is logged once until a write succeeds
// again, as the result stays pollable from memory either way.
func (a *asyncResults) appendLocked(r asyncRecord) {
	if a.journal == nil {
		return
	}
	err := a.journal.append(r)
	if err == nil && a.journal.outgrown(len(a.pending)) {
		err = a.compactLocked()
	}
	switch {
	case err != nil && !a.failing:
		a.log.Error("cannot keep asynchronous results across restarts", "err", err)
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
		errs = append(errs, a.journal.close())
	}
	return errors.Join(errs...)
}

func (a *asyncResults) add() (string, bool) {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	a.mu.Lock()
	a.expireLocked()
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
