package wire

import (
	"bytes"
	"testing"

	"github.com/edgeless-go/edgeless/core"
)

// FuzzDecodeEvent checks that DecodeEvent never panics, that what it accepts
// re-encodes to a frame that decodes to the same event, and that the payload
// aliases the input. Seeds are in testdata/fuzz/FuzzDecodeEvent.
func FuzzDecodeEvent(f *testing.F) {
	e := testEvent(core.KindCall, 42, 1_700_000_000_000_000_000, []byte("seed"))
	f.Add(AppendEvent(nil, &e)[prefixLen:])
	f.Fuzz(func(t *testing.T, body []byte) {
		var got core.Event
		if err := DecodeEvent(body, &got); err != nil {
			return
		}
		if len(got.Payload) > 0 && !aliases(got.Payload, body) {
			t.Fatal("payload does not alias the body")
		}
		frame := AppendEvent(nil, &got)
		var again core.Event
		if err := DecodeEvent(frame[prefixLen:], &again); err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
		if !sameEvent(&got, &again) {
			t.Fatalf("round trip changed the event: %+v != %+v", got, again)
		}
		if len(frame) != eventFrameSize(&got) {
			t.Fatalf("frame is %d bytes, eventFrameSize says %d", len(frame), eventFrameSize(&got))
		}
	})
}

// FuzzFrames feeds a byte stream through the frame splitter and every body
// decoder, as the server and the client do, checking that nothing panics,
// that splitting always makes progress within bounds, and that accepted
// requests and responses re-encode to the same values. Seeds are in
// testdata/fuzz/FuzzFrames.
func FuzzFrames(f *testing.F) {
	e := testEvent(core.KindCast, 0, 0, []byte("x"))
	stream := AppendEvent(nil, &e)
	stream = appendRequest(stream, 7, "node.start", []byte{0x81, 0xa1, 'a', 1})
	stream = appendResponse(stream, 7, "", []byte{0xc0})
	f.Add(stream, uint16(64))
	f.Fuzz(func(t *testing.T, stream []byte, max uint16) {
		var ev core.Event
		for len(stream) > 0 {
			body, n, err := nextFrame(stream, int(max))
			if err != nil || n == 0 {
				return
			}
			if n > len(stream) || len(body) != n-prefixLen || len(body) > int(max) {
				t.Fatalf("nextFrame returned n=%d, body %d bytes, for %d bytes with max %d", n, len(body), len(stream), max)
			}
			stream = stream[n:]
			kind, _, err := frameKind(body)
			if err != nil {
				continue
			}
			switch kind {
			case kindRequest, kindResponse:
				id, text, payload, err := decodeEnvelope(body, kind, "frame")
				if err != nil {
					continue
				}
				var again []byte
				if kind == kindRequest {
					again = appendRequest(nil, id, string(text), payload)
				} else {
					again = appendResponse(nil, id, string(text), payload)
				}
				id2, text2, payload2, err := decodeEnvelope(again[prefixLen:], kind, "frame")
				if err != nil || id2 != id || !bytes.Equal(text2, text) || !bytes.Equal(payload2, payload) {
					t.Fatalf("envelope round trip: %d %q %x -> %d %q %x, %v", id, text, payload, id2, text2, payload2, err)
				}
			default:
				_ = DecodeEvent(body, &ev)
			}
		}
	})
}

// aliases reports whether p lies within b.
func aliases(p, b []byte) bool {
	for i := range b {
		if &b[i] == &p[0] {
			return len(b)-i >= len(p)
		}
	}
	return false
}
