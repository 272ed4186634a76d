package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
)

// Keys of the shared store. Only controllers read and write them.
const (
	asyncKeyPrefix    = "edgeless:serverledge:async:"    // asyncRecord JSON
	progressKeyPrefix = "edgeless:serverledge:progress:" // graphProgress JSON
)

// sharedOpTimeout bounds one operation on the shared store.
const sharedOpTimeout = 2 * time.Second

// sharedResults keeps asynchronous results and workflow progress in Redis,
// where every controller configured with the same redis_url finds them. A
// running invocation is a record without a result whose Expires is the
// latest it can end (request_timeout_sec from its start): past that, its
// controller is gone and it is reported lost. A failing store is logged once
// until it works again; what this controller keeps in memory still answers.
// A nil *sharedResults does nothing, so that callers need no branch. It is
// safe for concurrent use.
type sharedResults struct {
	rdb     *redis.Client
	url     string // redacted, for logs
	ttl     time.Duration
	runFor  time.Duration // request_timeout_sec
	log     *slog.Logger
	failing atomic.Bool
}

// newAsyncStore returns the asynchronous results cfg asks for: shared
// through redis_url, or else journalled next to persistence_filename.
func newAsyncStore(cfg *Config, log *slog.Logger) (*asyncResults, error) {
	ttl := time.Duration(cfg.AsyncResultTTLSec) * time.Second
	shared, err := newSharedResults(cfg.RedisURL, ttl, time.Duration(cfg.RequestTimeoutSec)*time.Second, log)
	if err != nil {
		return nil, err
	}
	path := asyncPath(cfg.PersistenceFilename)
	if shared != nil {
		path = "" // the shared store keeps them across restarts
	}
	return newAsyncResults(ttl, cfg.MaxAsyncPending, path, shared, log), nil
}

func newSharedResults(url string, ttl, runFor time.Duration, log *slog.Logger) (*sharedResults, error) {
	if url == "" {
		return nil, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cannot use the shared store %s: %w", core.Redact(url), err)
	}
	return &sharedResults{rdb: redis.NewClient(opts), url: core.Redact(url), ttl: ttl, runFor: runFor, log: log}, nil
}

func (s *sharedResults) close() error {
	if s == nil {
		return nil
	}
	return s.rdb.Close()
}

// failed logs the first failure of a run of them, and a recovery.
func (s *sharedResults) failed(err error) {
	switch {
	case err != nil && !s.failing.Swap(true):
		s.log.Error("cannot use the shared store for asynchronous results; results stay on this controller", "redis", s.url, "err", err)
	case err == nil && s.failing.Swap(false):
		s.log.Info("the shared store for asynchronous results works again", "redis", s.url)
	}
}

func (s *sharedResults) put(key string, data []byte, ttl time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedOpTimeout)
	defer cancel()
	s.failed(s.rdb.Set(ctx, key, data, ttl).Err())
}

// read returns the value of key and whether it exists; err only when the
// store cannot say.
func (s *sharedResults) read(key string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sharedOpTimeout)
	defer cancel()
	data, err := s.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	s.failed(err)
	return data, len(data) > 0, err
}

func marshalRecord(r asyncRecord) []byte {
	data, err := json.Marshal(&r)
	if err != nil {
		panic("BUG: an invocation does not marshal: " + err.Error())
	}
	return data
}

// started records a running invocation.
func (s *sharedResults) started(id string) {
	if s == nil {
		return
	}
	s.put(asyncKeyPrefix+id, marshalRecord(asyncRecord{ID: id, Expires: time.Now().Add(s.runFor)}), s.runFor+s.ttl)
}

// done records an invocation's result.
func (s *sharedResults) done(id string, res *invocation) {
	if s == nil {
		return
	}
	s.put(asyncKeyPrefix+id, marshalRecord(asyncRecord{ID: id, Result: res, Expires: time.Now().Add(s.ttl)}), s.ttl)
}

// get returns a result (nil while running) and whether the store knows id.
func (s *sharedResults) get(id string) (*invocation, bool) {
	if s == nil {
		return nil, false
	}
	data, ok, _ := s.read(asyncKeyPrefix + id)
	var r asyncRecord
	if !ok || json.Unmarshal(data, &r) != nil {
		return nil, false
	}
	if r.Result == nil && time.Now().After(r.Expires) {
		return &invocation{Status: http.StatusServiceUnavailable, Error: errLostShared}, true
	}
	return r.Result, true
}

// errLostShared is the result of an invocation whose controller did not
// record its end in time: it stopped while the invocation ran.
const errLostShared = "the controller running this invocation stopped before it ended; its result is lost"

func (s *sharedResults) saveProgress(id string, data []byte) {
	if s != nil {
		s.put(progressKeyPrefix+id, data, s.ttl)
	}
}

func (s *sharedResults) dropProgress(id string) {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sharedOpTimeout)
	defer cancel()
	s.failed(s.rdb.Del(ctx, progressKeyPrefix+id).Err())
}

// loadProgress returns the progress saved under id and whether there is
// any; err when the store cannot say.
func (s *sharedResults) loadProgress(id string) ([]byte, bool, error) {
	if s == nil {
		return nil, false, errors.New("no shared store")
	}
	return s.read(progressKeyPrefix + id)
}
