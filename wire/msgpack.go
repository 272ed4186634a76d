package wire

import (
	"encoding/binary"
	"errors"
	"math"
	"strconv"
)

// msgpack format codes. They mirror github.com/vmihailenco/msgpack/v5/msgpcode,
// whose codes are variables: as constants they let the readers below switch
// on a code without loading globals. TestCodesMatchMsgpcode keeps them equal.
const (
	mpPosFixintMax = 0x7f
	mpFixmapMin    = 0x80
	mpFixmapMax    = 0x8f
	mpFixarrayMin  = 0x90
	mpFixarrayMax  = 0x9f
	mpFixstrMin    = 0xa0
	mpFixstrMax    = 0xbf
	mpNil          = 0xc0
	mpFalse        = 0xc2
	mpTrue         = 0xc3
	mpBin8         = 0xc4
	mpBin16        = 0xc5
	mpBin32        = 0xc6
	mpUint8        = 0xcc
	mpUint16       = 0xcd
	mpUint32       = 0xce
	mpUint64       = 0xcf
	mpInt8         = 0xd0
	mpInt16        = 0xd1
	mpInt32        = 0xd2
	mpInt64        = 0xd3
	mpStr8         = 0xd9
	mpStr16        = 0xda
	mpStr32        = 0xdb
	mpArray16      = 0xdc
	mpArray32      = 0xdd
	mpMap16        = 0xde
	mpMap32        = 0xdf
	mpNegFixintMin = 0xe0
)

// ErrMalformed is wrapped by every error about bytes that do not form a valid
// frame, so callers can tell a bad peer from a local failure with errors.Is.
var ErrMalformed = errors.New("malformed frame")

// FormatError describes the first thing wrong in a frame body.
type FormatError struct {
	Field  string // which element, e.g. "event target"
	Offset int    // offset of the offending byte within the frame body
	Reason string // what was expected and what was found
}

// Error returns "malformed frame: <field> at byte <offset>: <reason>".
func (e *FormatError) Error() string {
	return "malformed frame: " + e.Field + " at byte " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Unwrap returns ErrMalformed.
func (e *FormatError) Unwrap() error { return ErrMalformed }

func formatErr(field string, off int, reason string) error {
	return &FormatError{Field: field, Offset: off, Reason: reason}
}

func truncated(field string, off, need, have int) error {
	return formatErr(field, off, "truncated: need "+strconv.Itoa(need)+" bytes, have "+strconv.Itoa(have))
}

// codeName names the msgpack type a format code starts, for error messages.
func codeName(c byte) string {
	switch {
	case c <= mpPosFixintMax:
		return "positive fixint"
	case c < mpFixarrayMin:
		return "fixmap"
	case c <= mpFixarrayMax:
		return "fixarray"
	case c <= mpFixstrMax:
		return "fixstr"
	case c >= mpNegFixintMin:
		return "negative fixint"
	}
	names := [...]string{
		"nil", "never-used code 0xc1", "false", "true", "bin8", "bin16", "bin32", "ext8", "ext16", "ext32",
		"float32", "float64", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
		"fixext1", "fixext2", "fixext4", "fixext8", "fixext16", "str8", "str16", "str32",
		"array16", "array32", "map16", "map32",
	}
	return names[c-mpNil]
}

// need reports whether b holds n bytes after off.
func need(b []byte, off, n int) bool { return n <= len(b)-off }

// readArrayLen reads an array header of any width.
func readArrayLen(b []byte, off int, field string) (n, next int, err error) {
	if !need(b, off, 1) {
		return 0, off, truncated(field, off, 1, 0)
	}
	c := b[off]
	switch {
	case c >= mpFixarrayMin && c <= mpFixarrayMax:
		return int(c & 0x0f), off + 1, nil
	case c == mpArray16:
		if !need(b, off, 3) {
			return 0, off, truncated(field, off, 3, len(b)-off)
		}
		return int(binary.BigEndian.Uint16(b[off+1:])), off + 3, nil
	case c == mpArray32:
		if !need(b, off, 5) {
			return 0, off, truncated(field, off, 5, len(b)-off)
		}
		return int(binary.BigEndian.Uint32(b[off+1:])), off + 5, nil
	}
	return 0, off, formatErr(field, off, "want array, found "+codeName(c))
}

// readInt reads an integer of any msgpack width and signedness. A uint64 above
// math.MaxInt64 comes back in hi (with v zero), so callers decide whether an
// unsigned value that large is acceptable.
func readInt(b []byte, off int, field string) (v int64, hi uint64, next int, err error) {
	if !need(b, off, 1) {
		return 0, 0, off, truncated(field, off, 1, 0)
	}
	c := b[off]
	if c <= mpPosFixintMax {
		return int64(c), 0, off + 1, nil
	}
	if c >= mpNegFixintMin {
		return int64(int8(c)), 0, off + 1, nil
	}
	var size int
	switch c {
	case mpUint8, mpInt8:
		size = 1
	case mpUint16, mpInt16:
		size = 2
	case mpUint32, mpInt32:
		size = 4
	case mpUint64, mpInt64:
		size = 8
	default:
		return 0, 0, off, formatErr(field, off, "want integer, found "+codeName(c))
	}
	if !need(b, off, 1+size) {
		return 0, 0, off, truncated(field, off, 1+size, len(b)-off)
	}
	p := b[off+1:]
	next = off + 1 + size
	switch c {
	case mpUint8:
		return int64(p[0]), 0, next, nil
	case mpUint16:
		return int64(binary.BigEndian.Uint16(p)), 0, next, nil
	case mpUint32:
		return int64(binary.BigEndian.Uint32(p)), 0, next, nil
	case mpUint64:
		u := binary.BigEndian.Uint64(p)
		if u > math.MaxInt64 {
			return 0, u, next, nil
		}
		return int64(u), 0, next, nil
	case mpInt8:
		return int64(int8(p[0])), 0, next, nil
	case mpInt16:
		return int64(int16(binary.BigEndian.Uint16(p))), 0, next, nil
	case mpInt32:
		return int64(int32(binary.BigEndian.Uint32(p))), 0, next, nil
	}
	return int64(binary.BigEndian.Uint64(p)), 0, next, nil
}

// readUint reads a non-negative integer of any msgpack width.
func readUint(b []byte, off int, field string) (uint64, int, error) {
	v, hi, next, err := readInt(b, off, field)
	switch {
	case err != nil:
		return 0, off, err
	case hi != 0:
		return hi, next, nil
	case v < 0:
		return 0, off, formatErr(field, off, "want unsigned integer, found "+strconv.FormatInt(v, 10))
	}
	return uint64(v), next, nil
}

// readSigned reads an integer that must fit in an int64.
func readSigned(b []byte, off int, field string) (int64, int, error) {
	v, hi, next, err := readInt(b, off, field)
	switch {
	case err != nil:
		return 0, off, err
	case hi != 0:
		return 0, off, formatErr(field, off, "want int64, found "+strconv.FormatUint(hi, 10))
	}
	return v, next, nil
}

// readBytes reads a byte string: bin or str of any width (str is accepted
// because some encoders write byte strings as str), or nil when allowNil is
// set, which reads as an empty slice. The result aliases b.
func readBytes(b []byte, off int, field string, allowNil bool) ([]byte, int, error) {
	if !need(b, off, 1) {
		return nil, off, truncated(field, off, 1, 0)
	}
	c := b[off]
	var n, hdr int
	switch {
	case c >= mpFixstrMin && c <= mpFixstrMax:
		n, hdr = int(c&0x1f), 1
	case c == mpBin8 || c == mpStr8:
		if !need(b, off, 2) {
			return nil, off, truncated(field, off, 2, len(b)-off)
		}
		n, hdr = int(b[off+1]), 2
	case c == mpBin16 || c == mpStr16:
		if !need(b, off, 3) {
			return nil, off, truncated(field, off, 3, len(b)-off)
		}
		n, hdr = int(binary.BigEndian.Uint16(b[off+1:])), 3
	case c == mpBin32 || c == mpStr32:
		if !need(b, off, 5) {
			return nil, off, truncated(field, off, 5, len(b)-off)
		}
		n, hdr = int(binary.BigEndian.Uint32(b[off+1:])), 5
	case c == mpNil && allowNil:
		return nil, off + 1, nil
	default:
		return nil, off, formatErr(field, off, "want bin or str, found "+codeName(c))
	}
	if !need(b, off, hdr+n) {
		return nil, off, truncated(field, off, hdr+n, len(b)-off)
	}
	start := off + hdr
	return b[start : start+n : start+n], start + n, nil
}

// appendUint appends v in the smallest unsigned form, as msgpack encoders do.
func appendUint(dst []byte, v uint64) []byte {
	switch {
	case v <= mpPosFixintMax:
		return append(dst, byte(v))
	case v <= math.MaxUint8:
		return append(dst, mpUint8, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, mpUint16), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, mpUint32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, mpUint64), v)
}

// appendInt appends v in the smallest form; non-negative values use the
// unsigned forms, which every msgpack decoder reads into a signed integer.
func appendInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(dst, uint64(v))
	case v >= -32:
		return append(dst, byte(v))
	case v >= math.MinInt8:
		return append(dst, mpInt8, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(dst, mpInt16), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(dst, mpInt32), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, mpInt64), uint64(v))
}

// appendBin appends p as bin8, bin16 or bin32. A nil p is written as an empty
// bin, not as nil, so the field keeps one type.
func appendBin(dst, p []byte) []byte {
	switch n := len(p); {
	case n <= math.MaxUint8:
		dst = append(dst, mpBin8, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, mpBin16), uint16(n))
	case uint64(n) <= math.MaxUint32:
		dst = binary.BigEndian.AppendUint32(append(dst, mpBin32), uint32(n))
	default:
		panic("BUG: wire: byte string longer than 4 GiB")
	}
	return append(dst, p...)
}

// appendStr appends s as fixstr, str8, str16 or str32.
func appendStr(dst []byte, s string) []byte {
	switch n := len(s); {
	case n <= 31:
		dst = append(dst, mpFixstrMin|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, mpStr8, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, mpStr16), uint16(n))
	case uint64(n) <= math.MaxUint32:
		dst = binary.BigEndian.AppendUint32(append(dst, mpStr32), uint32(n))
	default:
		panic("BUG: wire: string longer than 4 GiB")
	}
	return append(dst, s...)
}

// binSize returns the encoded size of a bin of n bytes.
func binSize(n int) int {
	switch {
	case n <= math.MaxUint8:
		return 2 + n
	case n <= math.MaxUint16:
		return 3 + n
	}
	return 5 + n
}

// uintSize returns the size appendUint writes for v.
func uintSize(v uint64) int {
	switch {
	case v <= mpPosFixintMax:
		return 1
	case v <= math.MaxUint8:
		return 2
	case v <= math.MaxUint16:
		return 3
	case v <= math.MaxUint32:
		return 5
	}
	return 9
}

// intSize returns the size appendInt writes for v.
func intSize(v int64) int {
	switch {
	case v >= 0:
		return uintSize(uint64(v))
	case v >= -32:
		return 1
	case v >= math.MinInt8:
		return 2
	case v >= math.MinInt16:
		return 3
	case v >= math.MinInt32:
		return 5
	}
	return 9
}
