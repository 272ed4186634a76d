package core

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// ID is a 16-byte UUID in RFC 4122 byte order, the form EDGELESS passes to
// functions as raw bytes.
type ID [16]byte

// NewID returns a random (version 4) UUID.
func NewID() ID {
	var id ID
	if _, err := rand.Read(id[:]); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// ErrBadID reports a string that is not a UUID.
var ErrBadID = errors.New("not a UUID")

// ParseID parses the canonical 36-character textual form of a UUID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("%w: %q", ErrBadID, s)
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		if _, err := hex.Decode(id[j:j+1], []byte(s[i:i+2])); err != nil {
			return ID{}, fmt.Errorf("%w: %q", ErrBadID, s)
		}
		i += 2
		j++
	}
	return id, nil
}

// String returns the canonical textual form, e.g. 6ba7b810-9dad-11d1-80b4-00c04fd430c8.
func (id ID) String() string {
	var b [36]byte
	return string(id.Append(b[:0]))
}

// Append appends the canonical textual form to dst.
func (id ID) Append(dst []byte) []byte {
	var b [36]byte
	hex.Encode(b[0:8], id[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], id[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], id[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], id[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], id[10:16])
	return append(dst, b[:]...)
}

// IsZero reports whether id is the nil UUID.
func (id ID) IsZero() bool { return id == ID{} }

// Compare orders IDs by their bytes, for sorting.
func (id ID) Compare(other ID) int { return bytes.Compare(id[:], other[:]) }

// MarshalText implements encoding.TextMarshaler, so IDs appear as strings in JSON and TOML.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// InstanceID addresses one physical instance of a function or resource: the
// node that runs it and the instance's own identifier. It is the dataplane's
// address.
type InstanceID struct {
	Node      ID
	Component ID
}

// String returns "node/component".
func (i InstanceID) String() string { return i.Node.String() + "/" + i.Component.String() }

// IsZero reports whether i is unset.
func (i InstanceID) IsZero() bool { return i.Node.IsZero() && i.Component.IsZero() }
