package resources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeless-go/edgeless/core"
)

// redisTimeout bounds one Redis command, dial included: the instance handles
// events one at a time, so a Redis that is down must not stall its mailbox
// for long.
const redisTimeout = time.Second

// Redis is the redis provider: a cast SETs a key, a call GETs one. Each
// instance has its own connection to the Redis at its url. When Redis cannot
// be reached a cast is dropped and counted, a call replies Err; the client
// probes Redis every second meanwhile, so the instance recovers within about
// a second of Redis coming back.
type Redis struct {
	log *slog.Logger
}

// NewRedis returns the redis provider.
func NewRedis(log *slog.Logger) *Redis {
	if log == nil {
		log = slog.Default()
	}
	return &Redis{log: log.With("provider", "redis")}
}

// Spec implements Provider.
func (p *Redis) Spec() Spec {
	return Spec{
		ClassType: "redis",
		Version:   "1.2",
		Description: "A cast SETs the key of the configuration to the payload, or, when the payload is \"k:v\", " +
			"the key k to v; a call GETs the key named by its payload and replies with the value (Err when missing or unreachable).",
		Outputs: []string{},
		Configurations: map[string]string{
			"url":             "URL of the Redis server, redis://host:port[/db] (required)",
			"key":             "key that casts SET (optional when casts are \"k:v\")",
			"add-workflow-id": "if present, prefix every key with \"<workflow id>:\"",
		},
	}
}

// Start implements Provider.
func (p *Redis) Start(cfg StartConfig) (Instance, error) {
	c := cfg.Configurations
	rc, err := redisClient("redis", c["url"])
	if err != nil {
		return nil, err
	}
	prefix := ""
	if v, ok := c["add-workflow-id"]; ok && !isFalse(v) {
		prefix = cfg.Workflow.String() + ":"
	}
	i := &redisInstance{
		log:    p.log.With("instance", cfg.Self.Component.String(), "url", core.Redact(c["url"])),
		rc:     rc,
		prefix: prefix,
		fail:   core.Throttle{Every: 10 * time.Second},
	}
	if k := c["key"]; k != "" {
		i.key = prefix + k
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	if err := rc.Ping(ctx).Err(); err != nil {
		i.log.Warn("redis is not reachable yet; casts are dropped until it is", "err", err)
	}
	return i, nil
}

func redisClient(class, url string) (*redis.Client, error) {
	if url == "" {
		return nil, &ConfigError{Class: class, Key: "url", Msg: "missing"}
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, &ConfigError{Class: class, Key: "url", Msg: err.Error()}
	}
	opt.DialTimeout = redisTimeout
	opt.ReadTimeout = redisTimeout
	opt.WriteTimeout = redisTimeout
	// One retry covers a pooled connection that died with a Redis restart;
	// more would only delay the report of a Redis that is down.
	opt.MaxRetries = 1
	opt.DialerRetries = 1
	opt.PoolSize = 2
	opt.DisableIdentity = true // no CLIENT SETINFO, which older servers reject
	return redis.NewClient(opt), nil
}

type redisInstance struct {
	log     *slog.Logger
	rc      *redis.Client
	key     string // with prefix; "" when not configured
	prefix  string
	dropped atomic.Uint64
	fail    core.Throttle
	kbuf    []byte
}

// Dropped returns how many casts could not be stored.
func (i *redisInstance) Dropped() uint64 { return i.dropped.Load() }

func (i *redisInstance) Cast(src core.InstanceID, payload []byte) error {
	key, value := i.key, payload
	if k, v, ok := bytes.Cut(payload, []byte{':'}); ok {
		i.kbuf = append(append(i.kbuf[:0], i.prefix...), k...)
		key, value = string(i.kbuf), v
	}
	if key == "" {
		i.drop(errors.New("no key: set configuration key or cast \"key:value\""))
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	if err := i.rc.Set(ctx, key, value, 0).Err(); err != nil {
		i.drop(fmt.Errorf("cannot SET %q: %w", key, err))
	}
	return nil
}

func (i *redisInstance) drop(err error) {
	total := i.dropped.Add(1)
	if ok, n := i.fail.Allow(); ok {
		i.log.Warn("redis cast dropped", "err", err, "failures", n, "dropped", total)
	}
}

func (i *redisInstance) Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	key := i.prefix + string(payload)
	ctx, cancel := context.WithTimeout(context.Background(), redisTimeout)
	defer cancel()
	v, err := i.rc.Get(ctx, key).Bytes()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			if ok, n := i.fail.Allow(); ok {
				i.log.Warn("redis GET failed; replying Err", "key", key, "err", err, "failures", n)
			}
		}
		return core.CallErr, nil, nil
	}
	return core.CallReply, v, nil
}

func (i *redisInstance) Close() error { return i.rc.Close() }

func isFalse(s string) bool {
	b, err := strconv.ParseBool(s)
	return err == nil && !b
}
