package wire

import (
	"encoding/binary"
	"errors"
	"strconv"
)

// Frame kinds that are not event kinds (events use core.EventKind 1..5).
const (
	kindRequest  = 16
	kindResponse = 17
)

// DefaultMaxFrame is the largest frame body, in bytes, accepted when a
// configuration leaves MaxFrame at zero.
const DefaultMaxFrame = 4 << 20

// prefixLen is the size of the big-endian length that starts every frame.
const prefixLen = 4

// ErrFrameTooLarge reports a frame whose body exceeds the configured maximum,
// whether announced by a peer or about to be sent.
var ErrFrameTooLarge = errors.New("frame too large")

// nextFrame finds the first frame in b. It returns the frame's body (aliasing
// b) and the frame's total length including the prefix; n == 0 with a nil
// error means b does not yet hold a whole frame. A prefix announcing more than
// max bytes is an error at once, before any of the body arrives.
func nextFrame(b []byte, max int) (body []byte, n int, err error) {
	if len(b) < prefixLen {
		return nil, 0, nil
	}
	size := binary.BigEndian.Uint32(b)
	if uint64(size) > uint64(max) {
		return nil, 0, frameTooLarge(uint64(size), max)
	}
	end := prefixLen + int(size)
	if len(b) < end {
		return nil, 0, nil
	}
	return b[prefixLen:end:end], end, nil
}

func frameTooLarge(size uint64, max int) error {
	return &frameSizeError{size: size, max: max}
}

// frameSizeError is both ErrFrameTooLarge and ErrMalformed: an oversize frame
// from a peer is a protocol violation.
type frameSizeError struct {
	size uint64
	max  int
}

func (e *frameSizeError) Error() string {
	return "frame too large: " + strconv.FormatUint(e.size, 10) + " bytes, limit " + strconv.Itoa(e.max)
}

func (e *frameSizeError) Is(target error) bool {
	return target == ErrFrameTooLarge || target == ErrMalformed
}

// frameKind returns the kind of a frame body, the first element of its array,
// and the kind's offset.
func frameKind(body []byte) (kind uint64, off int, err error) {
	n, off, err := readArrayLen(body, 0, "frame")
	if err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, formatErr("frame", 0, "want array with a kind, found empty array")
	}
	kind, _, err = readUint(body, off, "frame kind")
	return kind, off, err
}

// beginFrame reserves the length prefix of a frame appended to dst.
func beginFrame(dst []byte) []byte { return append(dst, 0, 0, 0, 0) }

// endFrame fills in the length prefix of the frame that starts at start.
func endFrame(dst []byte, start int) []byte {
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-prefixLen))
	return dst
}
