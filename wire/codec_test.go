package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/edgeless-go/edgeless/core"
)

func TestCodesMatchMsgpcode(t *testing.T) {
	f := func(name string, ours int, theirs byte) {
		t.Helper()
		if byte(ours) != theirs {
			t.Errorf("%s: 0x%02x, msgpcode has 0x%02x", name, ours, theirs)
		}
	}
	f("PosFixintMax", mpPosFixintMax, msgpcode.PosFixedNumHigh)
	f("FixmapMin", mpFixmapMin, msgpcode.FixedMapLow)
	f("FixmapMax", mpFixmapMax, msgpcode.FixedMapHigh)
	f("False", mpFalse, msgpcode.False)
	f("True", mpTrue, msgpcode.True)
	f("Map16", mpMap16, msgpcode.Map16)
	f("Map32", mpMap32, msgpcode.Map32)
	f("FixarrayMin", mpFixarrayMin, msgpcode.FixedArrayLow)
	f("FixarrayMax", mpFixarrayMax, msgpcode.FixedArrayHigh)
	f("FixstrMin", mpFixstrMin, msgpcode.FixedStrLow)
	f("FixstrMax", mpFixstrMax, msgpcode.FixedStrHigh)
	f("Nil", mpNil, msgpcode.Nil)
	f("Bin8", mpBin8, msgpcode.Bin8)
	f("Bin16", mpBin16, msgpcode.Bin16)
	f("Bin32", mpBin32, msgpcode.Bin32)
	f("Uint8", mpUint8, msgpcode.Uint8)
	f("Uint16", mpUint16, msgpcode.Uint16)
	f("Uint32", mpUint32, msgpcode.Uint32)
	f("Uint64", mpUint64, msgpcode.Uint64)
	f("Int8", mpInt8, msgpcode.Int8)
	f("Int16", mpInt16, msgpcode.Int16)
	f("Int32", mpInt32, msgpcode.Int32)
	f("Int64", mpInt64, msgpcode.Int64)
	f("Str8", mpStr8, msgpcode.Str8)
	f("Str16", mpStr16, msgpcode.Str16)
	f("Str32", mpStr32, msgpcode.Str32)
	f("Array16", mpArray16, msgpcode.Array16)
	f("Array32", mpArray32, msgpcode.Array32)
	f("NegFixintMin", mpNegFixintMin, msgpcode.NegFixedNumLow)
}

// testEvent returns an event with recognisable ids and the given payload.
func testEvent(kind core.EventKind, corr uint64, created int64, payload []byte) core.Event {
	e := core.Event{Kind: kind, Corr: corr, Created: created, Payload: payload}
	for i := range 16 {
		e.Target.Node[i] = byte(i + 1)
		e.Target.Component[i] = byte(i + 0x11)
		e.Source.Node[i] = byte(i + 0x21)
		e.Source.Component[i] = byte(i + 0x31)
	}
	return e
}

// frameBody strips the length prefix of a single frame, checking it.
func frameBody(t *testing.T, frame []byte) []byte {
	t.Helper()
	body, n, err := nextFrame(frame, math.MaxInt32)
	if err != nil || n != len(frame) {
		t.Fatalf("frame of %d bytes: nextFrame = %d, %v", len(frame), n, err)
	}
	return body
}

func sameEvent(a, b *core.Event) bool {
	return a.Kind == b.Kind && a.Target == b.Target && a.Source == b.Source && a.Corr == b.Corr &&
		a.Created == b.Created && bytes.Equal(a.Payload, b.Payload)
}

func TestEventRoundTrip(t *testing.T) {
	f := func(name string, e core.Event) {
		t.Helper()
		frame := AppendEvent([]byte("junk"), &e)[4:]
		if got, want := len(frame), eventFrameSize(&e); got != want {
			t.Errorf("%s: frame is %d bytes, eventFrameSize says %d", name, got, want)
		}
		body := frameBody(t, frame)
		var got core.Event
		if err := DecodeEvent(body, &got); err != nil {
			t.Fatalf("%s: DecodeEvent: %v", name, err)
		}
		if !sameEvent(&got, &e) {
			t.Fatalf("%s: decoded %+v, want %+v", name, got, e)
		}
		if len(got.Payload) > 0 && &got.Payload[0] != &body[len(body)-len(got.Payload)] {
			t.Errorf("%s: payload does not alias the frame", name)
		}
	}
	f("cast", testEvent(core.KindCast, 0, 1_700_000_000_000_000_000, []byte("hello")))
	f("nil payload", testEvent(core.KindCall, 1, 0, nil))
	f("corr fixint max", testEvent(core.KindCallReply, 127, -1, []byte{0}))
	f("corr uint8", testEvent(core.KindCallReply, 255, -32, nil))
	f("corr uint16", testEvent(core.KindCallNoReply, 256, -33, nil))
	f("corr uint32", testEvent(core.KindCallErr, math.MaxUint32, math.MinInt16, nil))
	f("corr uint64", testEvent(core.KindCallErr, math.MaxUint64, math.MinInt64, nil))
	f("created max", testEvent(core.KindCast, 1<<40, math.MaxInt64, nil))
	f("bin16 payload", testEvent(core.KindCast, 0, 0, bytes.Repeat([]byte("x"), 300)))
	f("bin32 payload", testEvent(core.KindCast, 0, 0, bytes.Repeat([]byte("y"), 70_000)))
}

func TestAppendEventInvalidKindPanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "invalid event kind 9") {
			t.Fatalf("recovered %v, want a panic about kind 9", r)
		}
	}()
	e := testEvent(9, 0, 0, nil)
	AppendEvent(nil, &e)
}

// Byte-level builders for hand-made bodies.
var (
	ids      = bytes.Repeat([]byte{0xab}, 32)
	targetB8 = append([]byte{mpBin8, 32}, ids...)
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
func b(p ...byte) []byte         { return p }

func TestDecodeEventAcceptsEveryEncoding(t *testing.T) {
	want := core.Event{Kind: core.KindCall, Corr: 7, Created: -2, Payload: []byte("hi")}
	for i := range 16 {
		want.Target.Node[i], want.Target.Component[i] = 0xab, 0xab
		want.Source.Node[i], want.Source.Component[i] = 0xab, 0xab
	}
	f := func(name string, body []byte, wantPayload []byte) {
		t.Helper()
		var got core.Event
		if err := DecodeEvent(body, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w := want
		w.Payload = wantPayload
		if !sameEvent(&got, &w) {
			t.Fatalf("%s: decoded %+v, want %+v", name, got, w)
		}
	}
	tail := cat(b(7, 0xfe, mpBin8, 2), []byte("hi"))
	f("canonical", cat(b(0x96, 2), targetB8, targetB8, tail), []byte("hi"))
	f("array16", cat(b(mpArray16, 0, 6, 2), targetB8, targetB8, tail), []byte("hi"))
	f("array32", cat(b(mpArray32, 0, 0, 0, 6, 2), targetB8, targetB8, tail), []byte("hi"))
	f("kind uint8", cat(b(0x96, mpUint8, 2), targetB8, targetB8, tail), []byte("hi"))
	f("kind int64", cat(b(0x96, mpInt64, 0, 0, 0, 0, 0, 0, 0, 2), targetB8, targetB8, tail), []byte("hi"))
	f("ids bin16 and bin32", cat(b(0x96, 2, mpBin16, 0, 32), ids, b(mpBin32, 0, 0, 0, 32), ids, tail), []byte("hi"))
	f("ids str8 and str16", cat(b(0x96, 2, mpStr8, 32), ids, b(mpStr16, 0, 32), ids, tail), []byte("hi"))
	f("corr uint64, created int8", cat(b(0x96, 2), targetB8, targetB8,
		b(mpUint64, 0, 0, 0, 0, 0, 0, 0, 7, mpInt8, 0xfe, mpBin8, 2), []byte("hi")), []byte("hi"))
	f("corr int16, created int64", cat(b(0x96, 2), targetB8, targetB8,
		b(mpInt16, 0, 7, mpInt64, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe, mpBin8, 2), []byte("hi")), []byte("hi"))
	f("payload fixstr", cat(b(0x96, 2), targetB8, targetB8, b(7, 0xfe, 0xa2), []byte("hi")), []byte("hi"))
	f("payload str32", cat(b(0x96, 2), targetB8, targetB8, b(7, 0xfe, mpStr32, 0, 0, 0, 2), []byte("hi")), []byte("hi"))
	f("payload bin16", cat(b(0x96, 2), targetB8, targetB8, b(7, 0xfe, mpBin16, 0, 2), []byte("hi")), []byte("hi"))
	f("payload nil", cat(b(0x96, 2), targetB8, targetB8, b(7, 0xfe, mpNil)), nil)
}

func TestDecodeEventErrors(t *testing.T) {
	f := func(name string, body []byte, want string) {
		t.Helper()
		var e core.Event
		err := DecodeEvent(body, &e)
		if err == nil {
			t.Fatalf("%s: no error, want %q", name, want)
		}
		var fe *FormatError
		if !errors.Is(err, ErrMalformed) || !errors.As(err, &fe) {
			t.Fatalf("%s: %v is not a *FormatError wrapping ErrMalformed", name, err)
		}
		if err.Error() != want {
			t.Fatalf("%s:\n got %q\nwant %q", name, err, want)
		}
	}
	ok := AppendEvent(nil, &core.Event{Kind: core.KindCast, Payload: []byte("p")})[4:]
	f("empty", nil, "malformed frame: event at byte 0: truncated: need 1 bytes, have 0")
	f("not an array", b(0x81), "malformed frame: event at byte 0: want array, found fixmap")
	f("array16 truncated", b(mpArray16, 0), "malformed frame: event at byte 0: truncated: need 3 bytes, have 2")
	f("array32 truncated", b(mpArray32, 0), "malformed frame: event at byte 0: truncated: need 5 bytes, have 2")
	f("array of 5", b(0x95), "malformed frame: event at byte 0: want array of 6, found array of 5")
	f("kind missing", b(0x96), "malformed frame: event kind at byte 1: truncated: need 1 bytes, have 0")
	f("kind str", b(0x96, 0xa1, 'x'), "malformed frame: event kind at byte 1: want integer, found fixstr")
	f("kind zero", b(0x96, 0), "malformed frame: event kind at byte 1: want 1..5, found 0")
	f("kind 6", b(0x96, 6), "malformed frame: event kind at byte 1: want 1..5, found 6")
	f("kind 257", b(0x96, mpUint16, 1, 1), "malformed frame: event kind at byte 1: want 1..5, found 257")
	f("kind negative", b(0x96, 0xff), "malformed frame: event kind at byte 1: want unsigned integer, found -1")
	f("kind uint32 truncated", b(0x96, mpUint32, 0, 0), "malformed frame: event kind at byte 1: truncated: need 5 bytes, have 3")
	f("kind float", b(0x96, 0xcb), "malformed frame: event kind at byte 1: want integer, found float64")
	f("kind never-used code", b(0x96, 0xc1), "malformed frame: event kind at byte 1: want integer, found never-used code 0xc1")
	f("target missing", b(0x96, 1), "malformed frame: event target at byte 2: truncated: need 1 bytes, have 0")
	f("target nil", b(0x96, 1, mpNil), "malformed frame: event target at byte 2: want bin or str, found nil")
	f("target array", b(0x96, 1, 0x90), "malformed frame: event target at byte 2: want bin or str, found fixarray")
	f("target short", cat(b(0x96, 1, mpBin8, 16), ids[:16]), "malformed frame: event target at byte 2: want 32 bytes, found 16")
	f("target truncated", cat(b(0x96, 1, mpBin8, 32), ids[:10]), "malformed frame: event target at byte 2: truncated: need 34 bytes, have 12")
	f("target bin16 header truncated", b(0x96, 1, mpBin16, 0), "malformed frame: event target at byte 2: truncated: need 3 bytes, have 2")
	f("target bin32 huge", b(0x96, 1, mpBin32, 0xff, 0xff, 0xff, 0xff), "malformed frame: event target at byte 2: truncated: need 4294967300 bytes, have 5")
	f("source ext", cat(b(0x96, 1), targetB8, b(0xd4, 1, 1)), "malformed frame: event source at byte 36: want bin or str, found fixext1")
	f("corr negative", cat(b(0x96, 1), targetB8, targetB8, b(mpInt8, 0x80)), "malformed frame: event corr at byte 70: want unsigned integer, found -128")
	f("corr bool", cat(b(0x96, 1), targetB8, targetB8, b(0xc3)), "malformed frame: event corr at byte 70: want integer, found true")
	f("created too large", cat(b(0x96, 1), targetB8, targetB8, b(0, mpUint64, 0x80, 0, 0, 0, 0, 0, 0, 0)), "malformed frame: event created at byte 71: want int64, found 9223372036854775808")
	f("created map16", cat(b(0x96, 1), targetB8, targetB8, b(0, 0xde)), "malformed frame: event created at byte 71: want integer, found map16")
	f("payload int", cat(b(0x96, 1), targetB8, targetB8, b(0, 0, 5)), "malformed frame: event payload at byte 72: want bin or str, found positive fixint")
	f("payload truncated", cat(b(0x96, 1), targetB8, targetB8, b(0, 0, mpBin8, 3, 'a')), "malformed frame: event payload at byte 72: truncated: need 5 bytes, have 3")
	f("payload missing", cat(b(0x96, 1), targetB8, targetB8, b(0, 0)), "malformed frame: event payload at byte 72: truncated: need 1 bytes, have 0")
	f("trailing bytes", cat(ok, b(0, 0)), "malformed frame: event at byte 75: 2 bytes after the array")
}

// eventArray is the event frame as msgpack/v5 sees it with as_array.
type eventArray struct {
	_msgpack struct{} `msgpack:",as_array"`
	Kind     uint8
	Target   []byte
	Source   []byte
	Corr     uint64
	Created  int64
	Payload  []byte
}

func TestMsgpackReadsAppendEvent(t *testing.T) {
	e := testEvent(core.KindCallReply, 1<<33, -5_000_000_000, []byte("payload"))
	body := frameBody(t, AppendEvent(nil, &e))

	var generic []any
	if err := msgpack.Unmarshal(body, &generic); err != nil {
		t.Fatalf("Unmarshal into []any: %v", err)
	}
	if len(generic) != 6 {
		t.Fatalf("Unmarshal into []any: %d elements, want 6", len(generic))
	}
	target := append(e.Target.Node[:], e.Target.Component[:]...)
	if k, _ := generic[0].(int8); k != int8(e.Kind) {
		t.Errorf("kind = %#v", generic[0])
	}
	if got, _ := generic[1].([]byte); !bytes.Equal(got, target) {
		t.Errorf("target = %#v", generic[1])
	}
	if got, _ := generic[5].([]byte); string(got) != "payload" {
		t.Errorf("payload = %#v", generic[5])
	}

	var s eventArray
	if err := msgpack.Unmarshal(body, &s); err != nil {
		t.Fatalf("Unmarshal into as_array struct: %v", err)
	}
	source := append(e.Source.Node[:], e.Source.Component[:]...)
	if s.Kind != uint8(e.Kind) || !bytes.Equal(s.Target, target) || !bytes.Equal(s.Source, source) ||
		s.Corr != e.Corr || s.Created != e.Created || string(s.Payload) != "payload" {
		t.Fatalf("Unmarshal into as_array struct = %+v, want %+v", s, e)
	}
}

func TestDecodeEventReadsMsgpackMarshal(t *testing.T) {
	f := func(name string, s eventArray) {
		t.Helper()
		body, err := msgpack.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		var e core.Event
		if err := DecodeEvent(body, &e); err != nil {
			t.Fatalf("%s: DecodeEvent(% x): %v", name, body, err)
		}
		if e.Kind != core.EventKind(s.Kind) || !bytes.Equal(append(e.Target.Node[:], e.Target.Component[:]...), s.Target) ||
			!bytes.Equal(append(e.Source.Node[:], e.Source.Component[:]...), s.Source) || e.Corr != s.Corr ||
			e.Created != s.Created || !bytes.Equal(e.Payload, s.Payload) {
			t.Fatalf("%s: decoded %+v from %+v", name, e, s)
		}
	}
	id := bytes.Repeat([]byte{7}, 32)
	f("small", eventArray{Kind: 1, Target: id, Source: id, Corr: 0, Created: 1, Payload: []byte("x")})
	f("large", eventArray{Kind: 5, Target: id, Source: id, Corr: math.MaxUint64, Created: math.MinInt64,
		Payload: bytes.Repeat([]byte("z"), 1<<17)})
	f("nil payload", eventArray{Kind: 2, Target: id, Source: id, Corr: 300, Created: 1 << 62})
}

func TestEventCodecAllocs(t *testing.T) {
	e := testEvent(core.KindCast, 3, 1_700_000_000_000_000_000, bytes.Repeat([]byte("p"), 100))
	buf := AppendEvent(nil, &e)
	var got core.Event
	allocs := testing.AllocsPerRun(100, func() {
		buf = AppendEvent(buf[:0], &e)
		if err := DecodeEvent(buf[4:], &got); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("encode+decode: %v allocs, want 0", allocs)
	}
}

func TestNextFrame(t *testing.T) {
	f := func(name string, in []byte, max int, wantBody string, wantN int, wantErr error) {
		t.Helper()
		body, n, err := nextFrame(in, max)
		if !errors.Is(err, wantErr) || string(body) != wantBody || n != wantN {
			t.Fatalf("%s: got %q, %d, %v; want %q, %d, %v", name, body, n, err, wantBody, wantN, wantErr)
		}
	}
	frame := func(body string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
	}
	f("empty", nil, 10, "", 0, nil)
	f("partial prefix", []byte{0, 0}, 10, "", 0, nil)
	f("partial body", frame("hello")[:6], 10, "", 0, nil)
	f("whole", frame("hello"), 10, "hello", 9, nil)
	f("two", append(frame("ab"), frame("cd")...), 10, "ab", 6, nil)
	f("at the limit", frame("0123456789"), 10, "0123456789", 14, nil)
	f("over the limit", frame("0123456789x")[:4], 10, "", 0, ErrFrameTooLarge)
	f("over the limit is malformed", []byte{0xff, 0xff, 0xff, 0xff}, 10, "", 0, ErrMalformed)
}

func TestEnvelopeRoundTrip(t *testing.T) {
	frame := appendRequest(nil, 1<<40, "node.start", []byte{1, 2, 3})
	if got, want := len(frame), requestFrameSize("node.start", []byte{1, 2, 3}); got > want {
		t.Errorf("request frame is %d bytes, over the bound %d", got, want)
	}
	id, method, body, err := decodeEnvelope(frameBody(t, frame), kindRequest, "request")
	if err != nil || id != 1<<40 || string(method) != "node.start" || !bytes.Equal(body, []byte{1, 2, 3}) {
		t.Fatalf("request: %d %q %v %v", id, method, body, err)
	}
	id, msg, body, err := decodeEnvelope(frameBody(t, appendResponse(nil, 9, "", nil)), kindResponse, "response")
	if err != nil || id != 9 || len(msg) != 0 || len(body) != 0 {
		t.Fatalf("response: %d %q %v %v", id, msg, body, err)
	}
}

func TestEnvelopeErrors(t *testing.T) {
	f := func(name string, body []byte, kind uint64, want string) {
		t.Helper()
		what := "request"
		if kind == kindResponse {
			what = "response"
		}
		_, _, _, err := decodeEnvelope(body, kind, what)
		if err == nil || err.Error() != want || !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s:\n got %v\nwant %s", name, err, want)
		}
	}
	f("array of 3", b(0x93), kindRequest, "malformed frame: request at byte 0: want array of 4, found array of 3")
	f("wrong kind", b(0x94, 17), kindRequest, "malformed frame: request kind at byte 1: want 16, found 17")
	f("id negative", b(0x94, 16, 0xff), kindRequest, "malformed frame: request id at byte 2: want unsigned integer, found -1")
	f("method nil", b(0x94, 16, 1, mpNil), kindRequest, "malformed frame: request method at byte 3: want bin or str, found nil")
	f("err int", b(0x94, 17, 1, 1), kindResponse, "malformed frame: response error at byte 3: want bin or str, found positive fixint")
	f("body bool", b(0x94, 16, 1, 0xa1, 'm', 0xc2), kindRequest, "malformed frame: request body at byte 5: want bin or str, found false")
	f("trailing", b(0x94, 17, 1, mpNil, mpNil, 0), kindResponse, "malformed frame: response at byte 5: 1 bytes after the array")
}

func TestFrameKind(t *testing.T) {
	f := func(name string, body []byte, want uint64, wantErr string) {
		t.Helper()
		k, _, err := frameKind(body)
		if k != want || (err == nil) != (wantErr == "") || (err != nil && err.Error() != wantErr) {
			t.Fatalf("%s: %d, %v; want %d, %q", name, k, err, want, wantErr)
		}
	}
	f("event", b(0x96, 3), 3, "")
	f("request", b(0x94, 16), 16, "")
	f("empty array", b(0x90), 0, "malformed frame: frame at byte 0: want array with a kind, found empty array")
	f("map", b(0x80), 0, "malformed frame: frame at byte 0: want array, found fixmap")
	f("kind str", b(0x91, 0xa0), 0, "malformed frame: frame kind at byte 1: want integer, found fixstr")
}
