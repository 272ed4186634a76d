package spec

import (
	"bytes"
	"strconv"
	"strings"
)

// Error is a problem in a workflow or configuration file. Parsing and
// validation return *Error values, joined with errors.Join when there are
// several, so callers and tests can find the offending path with errors.As or
// by unwrapping the join.
type Error struct {
	File string // file the problem is in; "" when parsing bytes without a name
	Path string // JSON path (functions[1].name) or TOML key (general.node_id); "" for the whole document
	Line int    // 1-based line of the offending text; 0 when not known, e.g. for validation problems
	Col  int    // 1-based byte column within Line; 0 when not known
	Msg  string // what is wrong
	Err  error  // underlying error, if any
}

// Error renders the problem as "file:line:col: path: msg", leaving out the
// parts that are not known.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File != "" {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Col))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, so that errors.Is(err, fs.ErrNotExist)
// works for a missing code file.
func (e *Error) Unwrap() error { return e.Err }

// position converts a byte offset in data to a 1-based line and byte column.
func position(data []byte, off int64) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// joinPath appends a key to a JSON or TOML path, quoting keys that are not
// plain identifiers so that the path stays unambiguous.
func joinPath(path, key string) string {
	if !isBareKey(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends an array index to a path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// isBareKey reports whether key can appear unquoted in a path or as a TOML
// bare key.
func isBareKey(key string) bool {
	if key == "" {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
