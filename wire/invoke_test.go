package wire

import (
	"reflect"
	"testing"

	"github.com/edgeless-go/edgeless/core"
	"github.com/vmihailenco/msgpack/v5"
)

func sampleInvokes() ([]Invoke, []InvokeResponse) {
	return []Invoke{
			{},
			{Logical: core.NewID(), Component: core.NewID(), Payload: []byte(`{"a":1}`), Queue: true, MaxRespNS: 1 << 40,
				CanOffload: true, Urgent: true, Escalate: true},
			{Component: core.NewID(), Payload: make([]byte, 70_000), MaxRespNS: -5},
		}, []InvokeResponse{
			{},
			{Result: core.CallErr, Reply: []byte("reply"), Overloaded: true, Queued: 300, Failure: "trap: out of bounds",
				Node: core.NewID(), Offloaded: true, Cloud: true, Cold: true, InitNS: 12, RunNS: 1 << 33, OffloadNS: 7},
		}
}

// TestInvokeCodec: the invocation messages' own encoding and msgpack's
// reflection codec read each other's bytes to the same values.
func TestInvokeCodec(t *testing.T) {
	invokes, responses := sampleInvokes()
	for _, want := range invokes {
		roundTrips(t, &want, func() selfCoder { return new(Invoke) })
	}
	for _, want := range responses {
		roundTrips(t, &want, func() selfCoder { return new(InvokeResponse) })
	}
}

func roundTrips(t *testing.T, want selfCoder, fresh func() selfCoder) {
	t.Helper()
	ours := want.AppendMsgpack(nil)
	theirs, err := msgpack.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	viaLib, viaUs := fresh(), fresh()
	if err := msgpack.Unmarshal(ours, viaLib); err != nil {
		t.Fatalf("the reflection codec cannot read ours: %v", err)
	}
	if err := viaUs.DecodeMsgpackBytes(theirs); err != nil {
		t.Fatalf("ours cannot read the reflection codec's: %v", err)
	}
	for _, got := range []selfCoder{viaLib, viaUs} {
		if !equalMessages(got, want) {
			t.Fatalf("decoded %+v, want %+v", got, want)
		}
	}
}

// equalMessages compares two messages, an empty byte string equal to nil.
func equalMessages(a, b any) bool {
	norm := func(v any) any {
		switch m := v.(type) {
		case *Invoke:
			c := *m
			if len(c.Payload) == 0 {
				c.Payload = nil
			}
			return c
		case *InvokeResponse:
			c := *m
			if len(c.Reply) == 0 {
				c.Reply = nil
			}
			return c
		}
		return v
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// TestInvokeCodecFallback: a key this decoder does not know (a newer
// peer's) sends the message to the reflection codec, which keeps the rest;
// bytes that are no message are an error, not a panic.
func TestInvokeCodecFallback(t *testing.T) {
	type newer struct {
		Component core.ID `msgpack:"component"`
		Payload   []byte  `msgpack:"payload"`
		Priority  int     `msgpack:"priority"`
	}
	id := core.NewID()
	b, err := msgpack.Marshal(&newer{Component: id, Payload: []byte("p"), Priority: 3})
	if err != nil {
		t.Fatal(err)
	}
	var v Invoke
	if err := unmarshal(b, &v); err != nil || v.Component != id || string(v.Payload) != "p" {
		t.Fatalf("unmarshal = %v, %+v; want the known fields", err, v)
	}
	for _, bad := range [][]byte{nil, {0x81}, {0x81, 0xa1, 'x'}, {0xdf, 0xff, 0xff, 0xff, 0xff}, {0x81, 0xa7, 'l', 'o', 'g', 'i', 'c', 'a', 'l', 0xc4, 1, 'z'}} {
		var v Invoke
		if err := unmarshal(bad, &v); err == nil {
			t.Errorf("unmarshal(% x) = nil, want an error", bad)
		}
	}
}

func FuzzInvokeDecode(f *testing.F) {
	invokes, responses := sampleInvokes()
	for _, m := range invokes {
		f.Add(m.AppendMsgpack(nil))
	}
	for _, m := range responses {
		f.Add(m.AppendMsgpack(nil))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Invoke
		var r InvokeResponse
		v.DecodeMsgpackBytes(b)
		r.DecodeMsgpackBytes(b)
	})
}

func BenchmarkInvokeCodec(b *testing.B) {
	invokes, responses := sampleInvokes()
	req, resp := invokes[1], responses[1]
	b.Run("own", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v Invoke
			var r InvokeResponse
			x, _ := marshal(&req)
			v.DecodeMsgpackBytes(x)
			y, _ := marshal(&resp)
			r.DecodeMsgpackBytes(y)
		}
	})
	b.Run("reflection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v Invoke
			var r InvokeResponse
			x, _ := msgpack.Marshal(&req)
			msgpack.Unmarshal(x, &v)
			y, _ := msgpack.Marshal(&resp)
			msgpack.Unmarshal(y, &r)
		}
	})
}
