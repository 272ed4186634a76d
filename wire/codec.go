package wire

import (
	"strconv"

	"github.com/edgeless-go/edgeless/core"
)

// eventFields is the number of elements in an event frame's array.
const eventFields = 6

// idLen is the encoded size of an InstanceID: node then component.
const idLen = 32

// canonicalHead is the offset of corr in the layout AppendEvent writes: array
// header, kind, two bin8 ids.
const canonicalHead = 2 + 2*(2+idLen)

// eventFixedSize is the size of the parts of an event frame that do not vary:
// prefix, array header, kind and two bin8 ids.
const eventFixedSize = prefixLen + canonicalHead

// eventFrameSize returns the size of e's frame, prefix included, without
// encoding it.
func eventFrameSize(e *core.Event) int {
	return eventFixedSize + uintSize(e.Corr) + intSize(e.Created) + binSize(len(e.Payload))
}

// AppendEvent appends e to dst as a whole frame, length prefix included, and
// returns the extended slice. It does not allocate when dst has room. The
// frame is [kind, target, source, corr, created, payload]: ids as 32-byte bin
// (node then component), integers in their smallest form, payload as bin.
//
// e.Kind must be valid (see core.EventKind.Valid); an invalid kind panics,
// since no peer could accept the frame. AppendEvent does not enforce a maximum
// frame size: senders check the size against their limit.
func AppendEvent(dst []byte, e *core.Event) []byte {
	if !e.Kind.Valid() {
		panic("BUG: wire.AppendEvent: invalid event kind " + strconv.Itoa(int(e.Kind)))
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, mpFixarrayMin|eventFields, byte(e.Kind), mpBin8, idLen)
	dst = append(dst, e.Target.Node[:]...)
	dst = append(dst, e.Target.Component[:]...)
	dst = append(dst, mpBin8, idLen)
	dst = append(dst, e.Source.Node[:]...)
	dst = append(dst, e.Source.Component[:]...)
	dst = appendUint(dst, e.Corr)
	dst = appendInt(dst, e.Created)
	dst = appendBin(dst, e.Payload)
	return endFrame(dst, start)
}

// DecodeEvent decodes an event frame body (the frame without its length
// prefix) into e without allocating. e.Payload aliases body: it is valid for
// as long as body is. On error *e is left partly written.
//
// Any valid msgpack encoding of a field is accepted: the array header in any
// width, integers in any width or signedness that holds the value, ids and
// payload as bin or str of any width, and a nil payload (decoded as an empty
// one). Anything else, and bytes after the array, is a *FormatError naming
// the field and what was found.
func DecodeEvent(body []byte, e *core.Event) error {
	// Fast path for the layout AppendEvent writes up to corr; any other
	// encoding takes the general path below.
	if len(body) > canonicalHead && body[0] == mpFixarrayMin|eventFields && body[1]-1 < byte(core.KindCallErr) &&
		body[2] == mpBin8 && body[3] == idLen && body[36] == mpBin8 && body[37] == idLen {
		copy(e.Target.Node[:], body[4:20])
		copy(e.Target.Component[:], body[20:36])
		copy(e.Source.Node[:], body[38:54])
		copy(e.Source.Component[:], body[54:70])
		return decodeEventTail(body, canonicalHead, core.EventKind(body[1]), e)
	}
	n, off, err := readArrayLen(body, 0, "event")
	if err != nil {
		return err
	}
	if n != eventFields {
		return formatErr("event", 0, "want array of 6, found array of "+strconv.Itoa(n))
	}
	at := off
	kind, off, err := readUint(body, off, "event kind")
	if err != nil {
		return err
	}
	if k := core.EventKind(kind); kind > 0xff || !k.Valid() {
		return formatErr("event kind", at, "want 1..5, found "+strconv.FormatUint(kind, 10))
	}
	if off, err = readID(body, off, "event target", &e.Target); err != nil {
		return err
	}
	if off, err = readID(body, off, "event source", &e.Source); err != nil {
		return err
	}
	return decodeEventTail(body, off, core.EventKind(kind), e)
}

// decodeEventTail decodes corr, created and payload, which start at off.
func decodeEventTail(body []byte, off int, kind core.EventKind, e *core.Event) (err error) {
	if e.Corr, off, err = readUint(body, off, "event corr"); err != nil {
		return err
	}
	if e.Created, off, err = readSigned(body, off, "event created"); err != nil {
		return err
	}
	if e.Payload, off, err = readBytes(body, off, "event payload", true); err != nil {
		return err
	}
	if off != len(body) {
		return formatErr("event", off, strconv.Itoa(len(body)-off)+" bytes after the array")
	}
	e.Kind = kind
	return nil
}

func readID(b []byte, off int, field string, id *core.InstanceID) (int, error) {
	p, next, err := readBytes(b, off, field, false)
	if err != nil {
		return off, err
	}
	if len(p) != idLen {
		return off, formatErr(field, off, "want 32 bytes, found "+strconv.Itoa(len(p)))
	}
	copy(id.Node[:], p[:16])
	copy(id.Component[:], p[16:])
	return next, nil
}
