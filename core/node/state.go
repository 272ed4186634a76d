package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
)

// stateStore keeps the state functions save with sync(), under the logical
// function's id, so that every new instance of that function — after a
// failure, a node loss or a migration — gets it back in handle_init.
type stateStore interface {
	load(logical core.ID) ([]byte, error)
	// save keeps data as logical's state; it gives up at ctx's deadline.
	save(ctx context.Context, logical core.ID, data []byte) error
	close() error
}

// newStateStore returns a Redis store when redis_url is set, else a
// directory store.
func newStateStore(cfg State) (stateStore, error) {
	if cfg.RedisURL == "" {
		return dirStore(cfg.Dir), nil
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("state.redis_url: %w", err)
	}
	opts.Dialer = abortiveDialer(opts.TLSConfig)
	// A write must give up at its context's deadline (the lease's end), not
	// only at the client's own read timeout.
	opts.ContextTimeoutEnabled = true
	return &redisStore{c: redis.NewClient(opts), url: core.Redact(cfg.RedisURL)}, nil
}

// abortiveDialer dials state store connections that are reset when closed
// (SO_LINGER 0): a write that timed out, cut off by a partition, is discarded
// with its connection rather than delivered once the network heals, when it
// would overwrite the newer state of the function's new instance. Every
// write waits for its reply, so nothing acknowledged is lost this way.
func abortiveDialer(tlsCfg *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		if tlsCfg != nil {
			return tls.Client(c, tlsCfg), nil
		}
		return c, nil
	}
}

// dirStore keeps one file per logical function in a directory: enough for
// one machine, or several sharing a file system.
type dirStore string

func (d dirStore) path(logical core.ID) string { return filepath.Join(string(d), logical.String()) }

func (d dirStore) load(logical core.ID) ([]byte, error) {
	b, err := os.ReadFile(d.path(logical))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read state of %s: %w", logical, err)
	}
	return b, nil
}

// save replaces the state atomically, so a crash leaves the old or the new one.
func (d dirStore) save(_ context.Context, logical core.ID, data []byte) error {
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return fmt.Errorf("cannot create state directory: %w", err)
	}
	if err := core.WriteFileAtomic(d.path(logical), data); err != nil {
		return fmt.Errorf("cannot save state of %s: %w", logical, err)
	}
	return nil
}

func (dirStore) close() error { return nil }

// redisStore keeps state in Redis under edgeless:state:<logical id>, so that
// a function re-created on any node of the domain finds it.
type redisStore struct {
	c   *redis.Client
	url string
}

// stateTimeout bounds one state operation: sync() runs inside a handler.
const stateTimeout = 2 * time.Second

func stateKey(logical core.ID) string { return "edgeless:state:" + logical.String() }

func (r *redisStore) load(logical core.ID) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stateTimeout)
	defer cancel()
	b, err := r.c.Get(ctx, stateKey(logical)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read state of %s from %s: %w", logical, r.url, err)
	}
	return b, nil
}

func (r *redisStore) save(ctx context.Context, logical core.ID, data []byte) error {
	ctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	if err := r.c.Set(ctx, stateKey(logical), data, 0).Err(); err != nil {
		return fmt.Errorf("cannot save state of %s to %s: %w", logical, r.url, err)
	}
	return nil
}

func (r *redisStore) close() error { return r.c.Close() }
