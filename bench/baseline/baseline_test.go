package baseline

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/panjf2000/gnet/v2"
	"github.com/panjf2000/gnet/v2/pkg/logging"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/encoding/protowire"
)

// event is the event every baseline moves.
type event struct {
	Kind    uint8    `msgpack:"kind"`
	Target  [32]byte `msgpack:"target"`
	Source  [32]byte `msgpack:"source"`
	Corr    uint64   `msgpack:"corr"`
	Created int64    `msgpack:"created"`
	Payload []byte   `msgpack:"payload"`
}

func newEvent() event {
	e := event{Kind: 1, Corr: 7, Created: time.Now().UnixNano(), Payload: make([]byte, 64)}
	for i := range e.Target {
		e.Target[i], e.Source[i] = byte(i), byte(255-i)
	}
	return e
}

// frameSize is the size of edgeless's event frame for this event: a 4-byte
// length, then a msgpack array of a fixint kind, two bin8 ids of 32 bytes,
// a uint64, an int64 and a bin8 payload of 64 bytes.
const frameSize = 4 + 1 + 1 + 2*(2+32) + 2*9 + 2 + 64

// latencies records durations and reports their percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	b.ReportMetric(float64(l[len(l)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(l[len(l)*99/100])/1e3, "p99-µs")
}

// rtt times one round trip per b.Loop iteration and reports percentiles.
func rtt(b *testing.B, trip func() error) {
	lat := make(latencies, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		t := time.Now()
		if err := trip(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	lat.report(b)
}

// ---- raw gnet echo ----

type echo struct {
	gnet.BuiltinEventEngine
	count bool
	bytes atomic.Int64
	ready chan struct{}
}

func (e *echo) OnBoot(gnet.Engine) gnet.Action { close(e.ready); return gnet.None }

func (e *echo) OnTraffic(c gnet.Conn) gnet.Action {
	buf, _ := c.Next(-1)
	if e.count {
		e.bytes.Add(int64(len(buf)))
		return gnet.None
	}
	c.Write(buf)
	return gnet.None
}

func startGnet(b *testing.B, count bool) (*echo, string) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := &echo{count: count, ready: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- gnet.Run(h, "tcp://"+addr, gnet.WithMulticore(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithLogLevel(logging.ErrorLevel))
	}()
	<-h.ready
	b.Cleanup(func() {
		gnet.Stop(context.Background(), "tcp://"+addr)
		<-done
	})
	return h, addr
}

func dial(b *testing.B, addr string) net.Conn {
	b.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func BenchmarkGnetEcho(b *testing.B) {
	frame := make([]byte, frameSize)
	binary.BigEndian.PutUint32(frame, frameSize-4)
	b.Run("rtt", func(b *testing.B) {
		_, addr := startGnet(b, false)
		c := dial(b, addr)
		in := make([]byte, frameSize)
		rtt(b, func() error {
			if _, err := c.Write(frame); err != nil {
				return err
			}
			_, err := io.ReadFull(c, in)
			return err
		})
	})
	b.Run("oneway", func(b *testing.B) {
		h, addr := startGnet(b, true)
		c := dial(b, addr)
		batch := make([]byte, 0, 256*frameSize)
		for range 256 {
			batch = append(batch, frame...)
		}
		oneway(b, func(n int) error {
			_, err := c.Write(batch[:n*frameSize])
			return err
		}, func() int64 { return h.bytes.Load() / frameSize })
	})
}

// oneway sends b.N events in batches of up to 256 (coalesced writes, as
// edgeless's client does under load) and waits until received counts them.
func oneway(b *testing.B, send func(n int) error, received func() int64) {
	start := received()
	b.ReportAllocs()
	b.ResetTimer()
	for left := b.N; left > 0; {
		n := min(left, 256)
		if err := send(n); err != nil {
			b.Fatal(err)
		}
		left -= n
	}
	deadline := time.Now().Add(time.Minute)
	for received()-start < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d events", received()-start, b.N)
		}
		time.Sleep(50 * time.Microsecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// ---- gRPC unary Handle(Event) ----

// rawCodec passes pre-encoded protobuf bytes through gRPC, so that no
// generated code is needed; the bytes are the event in protobuf wire
// format, as a generated Marshal would write them.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append((*v.(*[]byte))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "raw" }

func appendProto(dst []byte, e *event) []byte {
	dst = protowire.AppendTag(dst, 1, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(e.Kind))
	dst = protowire.AppendTag(dst, 2, protowire.BytesType)
	dst = protowire.AppendBytes(dst, e.Target[:])
	dst = protowire.AppendTag(dst, 3, protowire.BytesType)
	dst = protowire.AppendBytes(dst, e.Source[:])
	dst = protowire.AppendTag(dst, 4, protowire.VarintType)
	dst = protowire.AppendVarint(dst, e.Corr)
	dst = protowire.AppendTag(dst, 5, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(e.Created))
	dst = protowire.AppendTag(dst, 6, protowire.BytesType)
	return protowire.AppendBytes(dst, e.Payload)
}

// parseProto decodes the event's fields, as a generated Unmarshal would.
func parseProto(b []byte, e *event) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			switch num {
			case 1:
				e.Kind = uint8(v)
			case 4:
				e.Corr = v
			case 5:
				e.Created = int64(v)
			}
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			switch num {
			case 2:
				copy(e.Target[:], v)
			case 3:
				copy(e.Source[:], v)
			case 6:
				e.Payload = append(e.Payload[:0], v...)
			}
			b = b[n:]
		default:
			return fmt.Errorf("unexpected wire type %d", typ)
		}
	}
	return nil
}

type handler struct{ handled atomic.Int64 }

var serviceDesc = grpc.ServiceDesc{
	ServiceName: "edgeless.baseline.Dataplane",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Handle", Handler: func(srv any, ctx context.Context,
		dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var in []byte
		if err := dec(&in); err != nil {
			return nil, err
		}
		var e event
		if err := parseProto(in, &e); err != nil {
			return nil, err
		}
		srv.(*handler).handled.Add(1)
		out := []byte{}
		return &out, nil
	}}},
}

func startGRPC(b *testing.B) (*handler, *grpc.ClientConn) {
	b.Helper()
	encoding.RegisterCodec(rawCodec{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	h := &handler{}
	s := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	s.RegisterService(&serviceDesc, h)
	var wg sync.WaitGroup
	wg.Go(func() { s.Serve(ln) })
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cc.Close()
		s.Stop()
		wg.Wait()
	})
	return h, cc
}

func BenchmarkGRPC(b *testing.B) {
	const method = "/edgeless.baseline.Dataplane/Handle"
	e := newEvent()
	b.Run("rtt", func(b *testing.B) {
		_, cc := startGRPC(b)
		ctx := context.Background()
		var reply []byte
		buf := appendProto(nil, &e)
		rtt(b, func() error {
			buf = appendProto(buf[:0], &e)
			return cc.Invoke(ctx, method, &buf, &reply)
		})
	})
	b.Run("oneway", func(b *testing.B) {
		// Unary calls cannot be pipelined on one caller: 64 concurrent
		// callers share the one HTTP/2 connection.
		h, cc := startGRPC(b)
		start := h.handled.Load()
		b.ReportAllocs()
		b.SetParallelism(32)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			var reply []byte
			var buf []byte
			for pb.Next() {
				buf = appendProto(buf[:0], &e)
				if err := cc.Invoke(ctx, method, &buf, &reply); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		if got := h.handled.Load() - start; got != int64(b.N) {
			b.Fatalf("handled %d of %d", got, b.N)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// ---- plain net.Conn with msgpack ----

// serveMsgpack decodes length-less msgpack events from each connection; it
// echoes each one back (reply) or counts it.
func serveMsgpack(b *testing.B, reply bool) (string, *atomic.Int64) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				dec := msgpack.NewDecoder(bufio.NewReaderSize(c, 64<<10))
				w := bufio.NewWriterSize(c, 64<<10)
				enc := msgpack.NewEncoder(w)
				var e event
				for {
					if err := dec.Decode(&e); err != nil {
						return
					}
					n.Add(1)
					if reply {
						if enc.Encode(&e) != nil || w.Flush() != nil {
							return
						}
					}
				}
			})
		}
	})
	b.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String(), &n
}

func BenchmarkNetMsgpack(b *testing.B) {
	e := newEvent()
	b.Run("rtt", func(b *testing.B) {
		addr, _ := serveMsgpack(b, true)
		c := dial(b, addr)
		dec := msgpack.NewDecoder(bufio.NewReader(c))
		var got event
		rtt(b, func() error {
			data, err := msgpack.Marshal(&e)
			if err != nil {
				return err
			}
			if _, err := c.Write(data); err != nil {
				return err
			}
			return dec.Decode(&got)
		})
	})
	b.Run("oneway", func(b *testing.B) {
		addr, n := serveMsgpack(b, false)
		c := dial(b, addr)
		w := bufio.NewWriterSize(c, 64<<10)
		enc := msgpack.NewEncoder(w)
		oneway(b, func(k int) error {
			for range k {
				if err := enc.Encode(&e); err != nil {
					return err
				}
			}
			return w.Flush()
		}, n.Load)
	})
}

// ---- NATS request/reply through an embedded nats-server ----

// startNATS starts a nats-server in this process on a random loopback port
// and connects a responder to it, which parses every event on subject and,
// for requests, answers with an empty reply. Every event therefore crosses
// the broker: client → server → responder (→ server → client).
func startNATS(b *testing.B, subject string) (*handler, string) {
	b.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
		NoLog: true, NoSigs: true})
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	b.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats-server is not ready")
	}
	nc := connectNATS(b, s.ClientURL())
	h := &handler{}
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		var e event
		if err := parseProto(m.Data, &e); err != nil {
			b.Error(err)
			return
		}
		h.handled.Add(1)
		if m.Reply != "" {
			m.Respond(nil)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	// The one-way benchmark publishes faster than one subscriber drains;
	// the default pending limits would drop events as a slow consumer.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		b.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	return h, s.ClientURL()
}

func connectNATS(b *testing.B, url string) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

func BenchmarkNATS(b *testing.B) {
	const subject = "edgeless.baseline.handle"
	e := newEvent()
	b.Run("rtt", func(b *testing.B) {
		_, url := startNATS(b, subject)
		nc := connectNATS(b, url)
		buf := appendProto(nil, &e)
		rtt(b, func() error {
			buf = appendProto(buf[:0], &e)
			_, err := nc.Request(subject, buf, 10*time.Second)
			return err
		})
	})
	b.Run("oneway", func(b *testing.B) {
		h, url := startNATS(b, subject)
		nc := connectNATS(b, url)
		var buf []byte
		// nats.go coalesces publishes in its own write buffer, flushed by
		// its flusher goroutine: the batches are the client's, not ours.
		oneway(b, func(n int) error {
			for range n {
				buf = appendProto(buf[:0], &e)
				if err := nc.Publish(subject, buf); err != nil {
					return err
				}
			}
			return nil
		}, h.handled.Load)
	})
}
