package controller

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/edgeless-go/edgeless/core"
)

// journal is an append-only file of JSON records, one per line, that its
// owner replays at start and rewrites whole when it has outgrown the state it
// records. It is not safe for concurrent use: its owner serialises calls.
type journal struct {
	path  string
	sync  bool     // fsync each record before append returns
	f     *os.File // open for appending; nil until open or rewrite
	lines int      // records appended since the last rewrite
}

// replay calls apply with each record of the file, in order. A last line
// that does not parse was cut short by a crash and is skipped; any other
// line that does not parse is an error, as is apply's.
func (j *journal) replay(apply func(line []byte) error) error {
	data, err := os.ReadFile(j.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", j.path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	var bad error
	for n := 1; sc.Scan(); n++ {
		if bad != nil {
			return bad
		}
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		if !json.Valid(line) {
			bad = fmt.Errorf("cannot read %s: line %d is not a JSON record", j.path, n)
			continue
		}
		if err := apply(line); err != nil {
			return fmt.Errorf("cannot read %s: line %d: %w", j.path, n, err)
		}
	}
	return sc.Err()
}

// rewrite replaces the file with data (whole records) atomically and opens
// it for appending.
func (j *journal) rewrite(data []byte, records int) error {
	j.close()
	if err := core.WriteFileAtomic(j.path, data); err != nil {
		return fmt.Errorf("cannot write %s: %w", j.path, err)
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open %s: %w", j.path, err)
	}
	j.f, j.lines = f, records
	return nil
}

// append writes the record v as one line.
func (j *journal) append(v any) error {
	if j.f == nil {
		return fmt.Errorf("cannot append to %s: not open", j.path)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot encode a record of %s: %w", j.path, err)
	}
	if _, err := j.f.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("cannot append to %s: %w", j.path, err)
	}
	if j.sync {
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("cannot append to %s: %w", j.path, err)
		}
	}
	j.lines++
	return nil
}

// outgrown says whether the file holds more than twice the live records,
// with some slack: rewriting it then costs O(1) per record appended.
func (j *journal) outgrown(live int) bool { return j.lines > 2*live+1024 }

func (j *journal) close() error {
	if j.f == nil {
		return nil
	}
	err := j.f.Close()
	j.f = nil
	return err
}

// appendRecord appends v's JSON and a newline to buf.
func appendRecord(buf *bytes.Buffer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf.Write(data)
	buf.WriteByte('\n')
	return nil
}
