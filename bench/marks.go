package bench

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Telemetry targets that delimit a transaction, as in EDGELESS's functions.
const (
	targetBegin = "tbegin"
	targetEnd   = "tend"
)

// mark is one tbegin or tend of a transaction. It holds no pointer, so
// that the garbage collector never walks the millions of marks a long run
// collects: with the ids as strings, a run of 2 M events grew a heap of
// 200 MB of them, whose marking took half a second of the run's CPU.
type mark struct {
	at  int64  // Unix ns, when the function made the host call
	txn uint64 // the transaction id (see markSink.txnKey)
	wf  uint32 // index of the workflow id in markSink.wfs
	end bool
}

// textTxn marks a transaction id that is not a plain decimal number: the
// rest of mark.txn is then the index of its text in markSink.texts.
const textTxn = 1 << 63

// markSink collects marks from any goroutine, up to max; past it they are
// counted and dropped, so that memory stays bounded on long runs. Marks go
// into fixed-size chunks: growing one slice would copy every mark so far
// while the lock is held, on the goroutine of the instance that logged.
type markSink struct {
	mu      sync.Mutex
	chunks  [][]mark
	n, max  int
	ends    int
	dropped int
	wfs     []string // workflow ids, by index
	wfIndex map[string]uint32
	texts   []string // transaction ids that are not plain numbers, by index
	txIndex map[string]uint64
}

const markChunk = 1 << 14

func newMarkSink(max int) *markSink {
	return &markSink{max: max, wfIndex: map[string]uint32{}, txIndex: map[string]uint64{}}
}

// workflow returns the index that marks of the workflow id carry.
func (s *markSink) workflow(id string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.wfIndex[id]
	if !ok {
		i = uint32(len(s.wfs))
		s.wfs = append(s.wfs, id)
		s.wfIndex[id] = i
	}
	return i
}

// add records that transaction txn of workflow wf (an index from
// workflow) began or ended at the Unix time at, in ns.
func (s *markSink) add(at int64, wf uint32, txn string, end bool) {
	s.mu.Lock()
	switch {
	case s.n >= s.max:
		s.dropped++
	default:
		if k := len(s.chunks); k == 0 || len(s.chunks[k-1]) == markChunk {
			s.chunks = append(s.chunks, make([]mark, 0, markChunk))
		}
		last := &s.chunks[len(s.chunks)-1]
		*last = append(*last, mark{at: at, txn: s.txnKey(txn), wf: wf, end: end})
		s.n++
		if end {
			s.ends++
		}
	}
	s.mu.Unlock()
}

// txnKey returns the key of a transaction id: its value when it is a plain
// decimal number (no sign, no leading zero, at most 18 digits: the text and
// the value then stand for each other, and the value is below textTxn),
// else textTxn and the index of its text. Under mu.
func (s *markSink) txnKey(txn string) uint64 {
	if v, ok := plainNumber(txn); ok {
		return v
	}
	i, ok := s.txIndex[txn]
	if !ok {
		i = textTxn | uint64(len(s.texts))
		s.texts = append(s.texts, txn)
		s.txIndex[txn] = i
	}
	return i
}

func plainNumber(s string) (uint64, bool) {
	if s == "" || len(s) > 18 || s[0] == '0' && len(s) > 1 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + uint64(s[i]-'0')
	}
	return v, true
}

// take returns the marks collected so far, the workflow ids their wf
// indexes name, and how many marks were dropped.
func (s *markSink) take() ([]mark, []string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := make([]mark, 0, s.n)
	for _, c := range s.chunks {
		all = append(all, c...)
	}
	return all, slices.Clone(s.wfs), s.dropped
}

// count returns how many marks were collected.
func (s *markSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// markHandler is the slog.Handler of an in-process cluster. Nodes turn a
// function's telemetry_log(TRACE, target, msg) into a debug record whose
// message is msg, with the attribute target and, from the instance's logger,
// workflow. The handler takes the records of tbegin and tend as marks and
// passes everything else at or above level to next.
//
// Enabled must admit debug records for the marks to be made at all, so the
// cluster's other debug records are made too and dropped here; none of them
// is on an event's path when nothing fails.
type markHandler struct {
	next  slog.Handler
	level slog.Level
	sink  *markSink
	wf    uint32 // the sink's index of the logger's "workflow" attribute
	hasWF bool
}

func (h *markHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l == slog.LevelDebug || l >= h.level
}

func (h *markHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelDebug && h.hasWF {
		var target string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "target" {
				target = a.Value.String()
				return false
			}
			return true
		})
		if target == targetBegin || target == targetEnd {
			h.sink.add(r.Time.UnixNano(), h.wf, r.Message, target == targetEnd)
			return nil
		}
	}
	if r.Level < h.level {
		return nil
	}
	return h.next.Handle(ctx, r)
}

func (h *markHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	for _, a := range attrs {
		if a.Key == "workflow" {
			c.wf, c.hasWF = h.sink.workflow(a.Value.String()), true
		}
	}
	return &c
}

func (h *markHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}

// readRedisMarks reads the marks that the orchestrator's Redis proxy
// mirrored: the sorted sets performance:<instance>:tbegin and :tend, whose
// members are "<unix seconds>:<message>". instances maps a physical
// instance id to its workflow; instances of other workflows are skipped.
func readRedisMarks(ctx context.Context, url string, instances map[string]string, sink *markSink) error {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("cannot parse --redis-url: %w", err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	for _, target := range []string{targetBegin, targetEnd} {
		iter := rdb.Scan(ctx, 0, "performance:*:"+target, 1000).Iterator()
		for iter.Next(ctx) {
			key := iter.Val()
			inst := strings.TrimSuffix(strings.TrimPrefix(key, "performance:"), ":"+target)
			wf, ok := instances[inst]
			if !ok {
				continue
			}
			members, err := rdb.ZRange(ctx, key, 0, -1).Result()
			if err != nil {
				return fmt.Errorf("cannot read %s from Redis: %w", key, err)
			}
			for _, m := range members {
				ts, txn, ok := strings.Cut(m, ":")
				sec, err := strconv.ParseFloat(ts, 64)
				if !ok || err != nil {
					continue
				}
				sink.add(int64(sec*1e9), sink.workflow(wf), txn, target == targetEnd)
			}
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("cannot list the %s marks in Redis: %w", target, err)
		}
	}
	return nil
}

// reset forgets the marks collected so far, between the points of a
// scenario.
func (s *markSink) reset() {
	s.mu.Lock()
	s.chunks, s.n, s.ends, s.dropped = nil, 0, 0, 0
	s.texts, s.txIndex = nil, map[string]uint64{}
	s.mu.Unlock()
}

// endCount returns how many of the marks collected are ends.
func (s *markSink) endCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ends
}
