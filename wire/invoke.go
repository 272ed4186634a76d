package wire

import (
	"unsafe"

	"github.com/edgeless-go/edgeless/core"
)

// Invoke and InvokeResponse carry every FaaS invocation, so they encode and
// decode themselves, without reflection and allocating only the encoded
// message, in the same form as the reflection codec (a map keyed by the
// msgpack tags, ids as 36 bytes of text): either side reads the other's.
// A message this decoder does not expect (a key it does not know, from a
// newer peer) goes to the reflection codec.

// AppendMsgpack appends v's encoding to dst.
func (v *Invoke) AppendMsgpack(dst []byte) []byte {
	dst = append(dst, mpFixmapMin|8)
	dst = appendTextID(appendStr(dst, "logical"), v.Logical)
	dst = appendTextID(appendStr(dst, "component"), v.Component)
	dst = appendBin(appendStr(dst, "payload"), v.Payload)
	dst = appendBool(appendStr(dst, "queue"), v.Queue)
	dst = appendInt(appendStr(dst, "max_resp_ns"), v.MaxRespNS)
	dst = appendBool(appendStr(dst, "can_offload"), v.CanOffload)
	dst = appendBool(appendStr(dst, "urgent"), v.Urgent)
	return appendBool(appendStr(dst, "escalate"), v.Escalate)
}

// msgpackSize bounds the size of v's encoding.
func (v *Invoke) msgpackSize() int { return 200 + len(v.Payload) }

// DecodeMsgpackBytes decodes b into v; the payload aliases b.
func (v *Invoke) DecodeMsgpackBytes(b []byte) error {
	return decodeMap(b, "invoke", func(key string, b []byte, off int) (int, error) {
		var err error
		switch key {
		case "logical":
			off, err = readTextID(b, off, key, &v.Logical)
		case "component":
			off, err = readTextID(b, off, key, &v.Component)
		case "payload":
			v.Payload, off, err = readBytes(b, off, key, true)
		case "queue":
			v.Queue, off, err = readBool(b, off, key)
		case "max_resp_ns":
			v.MaxRespNS, off, err = readSigned(b, off, key)
		case "can_offload":
			v.CanOffload, off, err = readBool(b, off, key)
		case "urgent":
			v.Urgent, off, err = readBool(b, off, key)
		case "escalate":
			v.Escalate, off, err = readBool(b, off, key)
		default:
			return off, errUnknownKey
		}
		return off, err
	})
}

// AppendMsgpack appends v's encoding to dst.
func (v *InvokeResponse) AppendMsgpack(dst []byte) []byte {
	dst = append(dst, mpFixmapMin|12)
	dst = appendInt(appendStr(dst, "result"), int64(v.Result))
	dst = appendBin(appendStr(dst, "reply"), v.Reply)
	dst = appendBool(appendStr(dst, "overloaded"), v.Overloaded)
	dst = appendInt(appendStr(dst, "queued"), int64(v.Queued))
	dst = appendStr(appendStr(dst, "failure"), v.Failure)
	dst = appendTextID(appendStr(dst, "node"), v.Node)
	dst = appendBool(appendStr(dst, "offloaded"), v.Offloaded)
	dst = appendBool(appendStr(dst, "cloud"), v.Cloud)
	dst = appendBool(appendStr(dst, "cold"), v.Cold)
	dst = appendInt(appendStr(dst, "init_ns"), v.InitNS)
	dst = appendInt(appendStr(dst, "run_ns"), v.RunNS)
	return appendInt(appendStr(dst, "offload_ns"), v.OffloadNS)
}

// msgpackSize bounds the size of v's encoding.
func (v *InvokeResponse) msgpackSize() int { return 220 + len(v.Reply) + len(v.Failure) }

// DecodeMsgpackBytes decodes b into v; the reply aliases b.
func (v *InvokeResponse) DecodeMsgpackBytes(b []byte) error {
	return decodeMap(b, "invoke response", func(key string, b []byte, off int) (int, error) {
		var err error
		var n int64
		switch key {
		case "result":
			n, off, err = readSigned(b, off, key)
			v.Result = core.CallRet(n)
		case "reply":
			v.Reply, off, err = readBytes(b, off, key, true)
		case "overloaded":
			v.Overloaded, off, err = readBool(b, off, key)
		case "queued":
			n, off, err = readSigned(b, off, key)
			v.Queued = int(n)
		case "failure":
			var s []byte
			s, off, err = readBytes(b, off, key, true)
			v.Failure = string(s)
		case "node":
			off, err = readTextID(b, off, key, &v.Node)
		case "offloaded":
			v.Offloaded, off, err = readBool(b, off, key)
		case "cloud":
			v.Cloud, off, err = readBool(b, off, key)
		case "cold":
			v.Cold, off, err = readBool(b, off, key)
		case "init_ns":
			v.InitNS, off, err = readSigned(b, off, key)
		case "run_ns":
			v.RunNS, off, err = readSigned(b, off, key)
		case "offload_ns":
			v.OffloadNS, off, err = readSigned(b, off, key)
		default:
			return off, errUnknownKey
		}
		return off, err
	})
}

// errUnknownKey sends a message to the reflection codec.
var errUnknownKey = formatErr("map key", 0, "not known to this decoder")

// decodeMap reads a map with string keys from b, handing each value to
// field, which returns the offset after it.
func decodeMap(b []byte, what string, field func(key string, b []byte, off int) (int, error)) error {
	n, off, err := readMapLen(b, 0, what)
	if err != nil {
		return err
	}
	for range n {
		var key []byte
		if key, off, err = readBytes(b, off, "map key", false); err != nil {
			return err
		}
		if off, err = field(unsafe.String(unsafe.SliceData(key), len(key)), b, off); err != nil {
			return err
		}
	}
	if off != len(b) {
		return formatErr(what, off, "bytes after the map")
	}
	return nil
}

// appendTextID appends id as the reflection codec does: its text as bin.
func appendTextID(dst []byte, id core.ID) []byte {
	var text [36]byte
	return appendBin(dst, id.Append(text[:0]))
}

// readTextID reads an id written as text (bin or str).
func readTextID(b []byte, off int, field string, id *core.ID) (int, error) {
	text, next, err := readBytes(b, off, field, false)
	if err != nil {
		return off, err
	}
	v, err := core.ParseID(unsafe.String(unsafe.SliceData(text), len(text)))
	if err != nil {
		return off, formatErr(field, off, err.Error())
	}
	*id = v
	return next, nil
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, mpTrue)
	}
	return append(dst, mpFalse)
}

func readBool(b []byte, off int, field string) (bool, int, error) {
	if !need(b, off, 1) {
		return false, off, truncated(field, off, 1, len(b)-off)
	}
	switch b[off] {
	case mpTrue:
		return true, off + 1, nil
	case mpFalse:
		return false, off + 1, nil
	}
	return false, off, formatErr(field, off, "want a bool, got "+codeName(b[off]))
}

// readMapLen reads a map header of any width.
func readMapLen(b []byte, off int, field string) (n, next int, err error) {
	if !need(b, off, 1) {
		return 0, off, truncated(field, off, 1, len(b)-off)
	}
	c := b[off]
	switch {
	case c >= mpFixmapMin && c <= mpFixmapMax:
		return int(c - mpFixmapMin), off + 1, nil
	case c == mpMap16:
		if !need(b, off, 3) {
			return 0, off, truncated(field, off, 3, len(b)-off)
		}
		return int(b[off+1])<<8 | int(b[off+2]), off + 3, nil
	case c == mpMap32:
		if !need(b, off, 5) {
			return 0, off, truncated(field, off, 5, len(b)-off)
		}
		n := int(b[off+1])<<24 | int(b[off+2])<<16 | int(b[off+3])<<8 | int(b[off+4])
		// Each entry takes at least two bytes: a larger count is a lie
		// that would only make the caller loop.
		if n > (len(b)-off-5)/2 {
			return 0, off, formatErr(field, off, "map of more entries than bytes")
		}
		return n, off + 5, nil
	}
	return 0, off, formatErr(field, off, "want a map, got "+codeName(c))
}
