package spec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ParseWorkflow parses an EDGELESS workflow JSON document. file names the
// document in errors; data is not retained.
//
// Parsing is strict where EDGELESS is, and stricter about fields: unknown
// fields of functions, resources and class specifications, wrong types, null
// where a value is required, duplicate keys and anything after the top-level
// object are errors, and name, class_specification, id, function_type,
// version, class_type, functions and resources are required. It is lenient
// where a user would expect it to be: annotations, output_mapping,
// configurations and outputs may be left out or null and then read as empty
// (EDGELESS requires them). code and binary are optional, as in EDGELESS;
// binary is either an array of byte values (EDGELESS's form) or a base64
// string (encoding/json's form of a []byte). Unknown top-level fields are
// skipped, as EDGELESS skips them, and listed in Workflow.Ignored.
//
// The first problem stops parsing and is returned as an *Error with the JSON
// path, line and column. ParseWorkflow does not validate the workflow as a
// whole: call Validate, or use LoadWorkflow.
func ParseWorkflow(file string, data []byte) (*Workflow, error) {
	p := &parser{file: file, data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	p.dec.UseNumber()
	w, err := p.workflow()
	if err != nil {
		return nil, err
	}
	off := p.dec.InputOffset()
	for off < int64(len(data)) && isSpace(data[off]) {
		off++
	}
	if off < int64(len(data)) {
		return nil, p.errAt(off, "", "unexpected data after the workflow object")
	}
	return w, nil
}

// parser walks the JSON token stream, so that every error can name the path
// and position of the value at fault, which encoding/json's struct decoding
// cannot do for unknown fields or missing ones.
type parser struct {
	file string
	data []byte
	dec  *json.Decoder
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) errAt(off int64, path, format string, args ...any) *Error {
	line, col := position(p.data, off)
	return &Error{File: p.file, Path: path, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// next returns the offset where the next token starts: the decoder's offset is
// the end of the previous token, before any separator.
func (p *parser) next() int64 {
	off := p.dec.InputOffset()
	for off < int64(len(p.data)) && (isSpace(p.data[off]) || p.data[off] == ',' || p.data[off] == ':') {
		off++
	}
	return off
}

// token reads the next token and its start offset, turning malformed JSON into
// an *Error at the offending byte.
func (p *parser) token(path string) (json.Token, int64, error) {
	off := p.next()
	tok, err := p.dec.Token()
	if err == nil {
		return tok, off, nil
	}
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		// The decoder's offsets are relative to where it started reading the
		// current value; scanning the whole document finds the same first bad
		// byte with an absolute offset, which counts the bad byte itself.
		if uerr := json.Unmarshal(p.data, new(any)); errors.As(uerr, &se) {
			err = se
		}
		e := p.errAt(se.Offset-1, path, "malformed JSON: %s", se.Error())
		e.Err = err
		return nil, off, e
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return nil, off, p.errAt(int64(len(p.data)), path, "malformed JSON: unexpected end of input")
	}
	e := p.errAt(off, path, "malformed JSON: %v", err)
	e.Err = err
	return nil, off, e
}

// kind names a token's JSON type for error messages.
func kind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", tok)
}

// open reads the opening delimiter of an object or array. With nullable, a
// null is accepted and reported as isNull.
func (p *parser) open(path string, delim json.Delim, nullable bool) (start int64, isNull bool, err error) {
	tok, off, err := p.token(path)
	if err != nil {
		return off, false, err
	}
	if tok == nil && nullable {
		return off, true, nil
	}
	if d, ok := tok.(json.Delim); ok && d == delim {
		return off, false, nil
	}
	want := "an object"
	if delim == '[' {
		want = "an array"
	}
	return off, false, p.errAt(off, path, "want %s, got %s", want, kind(tok))
}

// object reads an object at path, calling field with the decoder positioned at
// each key's value. Duplicate keys are errors. It returns the offset of the
// opening brace, for errors about missing fields.
func (p *parser) object(path string, nullable bool, field func(key, keyPath string, keyOff int64) error) (start int64, isNull bool, err error) {
	start, isNull, err = p.open(path, '{', nullable)
	if err != nil || isNull {
		return start, isNull, err
	}
	seen := make(map[string]struct{})
	for p.dec.More() {
		tok, off, err := p.token(path)
		if err != nil {
			return start, false, err
		}
		key, ok := tok.(string)
		if !ok { // the decoder reports non-string keys as syntax errors; stay safe regardless
			return start, false, p.errAt(off, path, "want an object key, got %s", kind(tok))
		}
		kp := joinPath(path, key)
		if _, dup := seen[key]; dup {
			return start, false, p.errAt(off, kp, "duplicate key")
		}
		seen[key] = struct{}{}
		if err := field(key, kp, off); err != nil {
			return start, false, err
		}
	}
	if _, _, err := p.token(path); err != nil { // the closing brace
		return start, false, err
	}
	return start, false, nil
}

// array reads an array at path, calling elem with the decoder positioned at
// each element.
func (p *parser) array(path string, nullable bool, elem func(i int, elemPath string) error) (isNull bool, err error) {
	_, isNull, err = p.open(path, '[', nullable)
	if err != nil || isNull {
		return isNull, err
	}
	for i := 0; p.dec.More(); i++ {
		if err := elem(i, indexPath(path, i)); err != nil {
			return false, err
		}
	}
	_, _, err = p.token(path) // the closing bracket
	return false, err
}

func (p *parser) str(path string) (string, error) {
	tok, off, err := p.token(path)
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", p.errAt(off, path, "want a string, got %s", kind(tok))
	}
	return s, nil
}

// optStr reads a string that may be null.
func (p *parser) optStr(path string) (string, error) {
	tok, off, err := p.token(path)
	if err != nil {
		return "", err
	}
	switch s := tok.(type) {
	case string:
		return s, nil
	case nil:
		return "", nil
	}
	return "", p.errAt(off, path, "want a string or null, got %s", kind(tok))
}

// strMap reads an object of strings; null reads as an empty map.
func (p *parser) strMap(path string) (map[string]string, error) {
	m := make(map[string]string)
	_, _, err := p.object(path, true, func(key, kp string, _ int64) error {
		v, err := p.str(kp)
		m[key] = v
		return err
	})
	return m, err
}

// strList reads an array of strings; null reads as an empty slice.
func (p *parser) strList(path string) ([]string, error) {
	l := []string{}
	_, err := p.array(path, true, func(_ int, ep string) error {
		v, err := p.str(ep)
		l = append(l, v)
		return err
	})
	return l, err
}

// binary reads code bytes as an array of byte values or a base64 string. An
// empty binary reads as nil, the same as an absent one.
func (p *parser) binary(path string) ([]byte, error) {
	off := p.next()
	if off < int64(len(p.data)) && p.data[off] == '[' {
		var b []byte
		_, err := p.array(path, false, func(_ int, ep string) error {
			tok, off, err := p.token(ep)
			if err != nil {
				return err
			}
			n, ok := tok.(json.Number)
			if !ok {
				return p.errAt(off, ep, "want a byte value (0..255), got %s", kind(tok))
			}
			v, err := strconv.ParseUint(string(n), 10, 8)
			if err != nil {
				return p.errAt(off, ep, "want a byte value (0..255), got %s", n)
			}
			b = append(b, byte(v))
			return nil
		})
		return b, err
	}
	tok, off, err := p.token(path)
	if err != nil {
		return nil, err
	}
	switch s := tok.(type) {
	case nil:
		return nil, nil
	case string:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			e := p.errAt(off, path, "invalid base64: %v", err)
			e.Err = err
			return nil, e
		}
		if len(b) == 0 {
			return nil, nil
		}
		return b, nil
	}
	return nil, p.errAt(off, path, "want an array of byte values or a base64 string, got %s", kind(tok))
}

// required reports the first of names that is not in have, as a missing field
// of the object at path starting at start.
func (p *parser) required(path string, start int64, have map[string]bool, names ...string) error {
	for _, n := range names {
		if !have[n] {
			return p.errAt(start, joinPath(path, n), "missing required field")
		}
	}
	return nil
}

func (p *parser) unknown(kp string, off int64, known string) error {
	return p.errAt(off, kp, "unknown field (known: %s)", known)
}

func (p *parser) workflow() (*Workflow, error) {
	w := &Workflow{File: p.file, Functions: []Function{}, Resources: []Resource{}, Annotations: map[string]string{}}
	have := make(map[string]bool, 3)
	start, _, err := p.object("", false, func(key, kp string, off int64) error {
		have[key] = true
		var err error
		switch key {
		case "functions":
			_, err = p.array(kp, false, func(_ int, ep string) error {
				f, err := p.function(ep)
				w.Functions = append(w.Functions, f)
				return err
			})
		case "resources":
			_, err = p.array(kp, false, func(_ int, ep string) error {
				r, err := p.resource(ep)
				w.Resources = append(w.Resources, r)
				return err
			})
		case "annotations":
			w.Annotations, err = p.strMap(kp)
		default:
			// EDGELESS ignores fields it does not know, and users add some
			// (a "description"); inside functions and resources an unknown
			// field is more likely a misspelling, and stays an error.
			var skip json.RawMessage
			if err = p.dec.Decode(&skip); err != nil {
				return p.errAt(off, kp, "%v", err)
			}
			w.Ignored = append(w.Ignored, kp)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := p.required("", start, have, "functions", "resources"); err != nil {
		return nil, err
	}
	return w, nil
}

func (p *parser) function(path string) (Function, error) {
	f := Function{OutputMapping: map[string]string{}, Annotations: map[string]string{}}
	have := make(map[string]bool, 4)
	start, _, err := p.object(path, false, func(key, kp string, off int64) error {
		have[key] = true
		var err error
		switch key {
		case "name":
			f.Name, err = p.str(kp)
		case "class_specification":
			f.ClassSpecification, err = p.classSpec(kp)
		case "output_mapping":
			f.OutputMapping, err = p.strMap(kp)
		case "annotations":
			f.Annotations, err = p.strMap(kp)
		default:
			err = p.unknown(kp, off, "name, class_specification, output_mapping, annotations")
		}
		return err
	})
	if err != nil {
		return f, err
	}
	return f, p.required(path, start, have, "name", "class_specification")
}

func (p *parser) classSpec(path string) (ClassSpec, error) {
	cs := ClassSpec{Outputs: []string{}}
	have := make(map[string]bool, 6)
	start, _, err := p.object(path, false, func(key, kp string, off int64) error {
		have[key] = true
		var err error
		switch key {
		case "id":
			cs.ID, err = p.str(kp)
		case "function_type":
			cs.FunctionType, err = p.str(kp)
		case "version":
			cs.Version, err = p.str(kp)
		case "code":
			cs.Code, err = p.optStr(kp)
		case "binary":
			cs.Binary, err = p.binary(kp)
		case "outputs":
			cs.Outputs, err = p.strList(kp)
		default:
			err = p.unknown(kp, off, "id, function_type, version, code, binary, outputs")
		}
		return err
	})
	if err != nil {
		return cs, err
	}
	return cs, p.required(path, start, have, "id", "function_type", "version")
}

func (p *parser) resource(path string) (Resource, error) {
	r := Resource{OutputMapping: map[string]string{}, Configurations: map[string]string{}}
	have := make(map[string]bool, 4)
	start, _, err := p.object(path, false, func(key, kp string, off int64) error {
		have[key] = true
		var err error
		switch key {
		case "name":
			r.Name, err = p.str(kp)
		case "class_type":
			r.ClassType, err = p.str(kp)
		case "output_mapping":
			r.OutputMapping, err = p.strMap(kp)
		case "configurations":
			r.Configurations, err = p.strMap(kp)
		default:
			err = p.unknown(kp, off, "name, class_type, output_mapping, configurations")
		}
		return err
	})
	if err != nil {
		return r, err
	}
	return r, p.required(path, start, have, "name", "class_type")
}
