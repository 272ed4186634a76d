package spec

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// LoadConfig decodes the TOML file at path into cfg, a pointer to a struct
// already holding the defaults: keys the file leaves out keep their default
// values. Maps are merged into the default map; slices are replaced.
//
// Keys are matched to fields by their `toml` tag (or, without one, the field
// name). A key that matches no field is an error, so that a misspelt setting
// is never silently ignored; every unknown key is reported, as an *Error with
// the key as Path, joined with errors.Join. Syntax and type errors are an
// *Error with the position when the TOML library gives one.
func LoadConfig(path string, cfg any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read config %s: %w", path, err)
	}
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return &Error{File: path, Path: pe.LastKey, Line: pe.Position.Line, Col: pe.Position.Col, Msg: pe.Message, Err: err}
		}
		return &Error{File: path, Msg: strings.TrimPrefix(err.Error(), "toml: "), Err: err}
	}
	var errs []error
	var reported []toml.Key
	for _, k := range md.Undecoded() {
		// Report an unknown table once rather than once per key inside it.
		if slices.ContainsFunc(reported, func(r toml.Key) bool { return hasPrefix(k, r) }) {
			continue
		}
		reported = append(reported, k)
		errs = append(errs, &Error{File: path, Path: k.String(), Msg: "unknown key"})
	}
	return errors.Join(errs...)
}

func hasPrefix(k, prefix toml.Key) bool {
	return len(k) > len(prefix) && slices.Equal(k[:len(prefix)], prefix)
}

// WriteTemplate writes cfg, a struct or a pointer to one, as a TOML document
// meant to be edited: every field with its current value, preceded by the
// lines of its `comment` tag as # comments. Key names come from the `toml`
// tag (or the field name; "-" skips the field); nested structs become
// [tables] and slices of structs [[arrays of tables]], after the plain keys of
// their parent as TOML requires; embedded structs without a tag are flattened.
//
// Values may be strings, booleans, integers, floats, time.Duration (written as
// a string such as "1m30s"), any encoding.TextMarshaler (written as its text,
// e.g. a core.ID), slices and arrays of those, and maps with string keys
// (written as inline tables). A nil slice, map or pointer, and an empty slice
// of structs, is written commented out, so that loading the template leaves
// the field as it was: loading a template of the defaults yields the defaults.
func WriteTemplate(w io.Writer, cfg any) error {
	v := reflect.ValueOf(cfg)
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return fmt.Errorf("cannot write config template: %T is not a struct", cfg)
	}
	var t template
	if err := t.table(nil, v, false); err != nil {
		return fmt.Errorf("cannot write config template for %T: %w", cfg, err)
	}
	_, err := w.Write(t.buf.Bytes())
	return err
}

// template accumulates the TOML text of WriteTemplate.
type template struct {
	buf bytes.Buffer
}

// field is one struct field as it appears in TOML.
type field struct {
	key     string
	comment string
	v       reflect.Value
}

// fields lists the TOML fields of struct value v, flattening untagged
// embedded structs as the decoder does.
func fields(v reflect.Value) []field {
	var out []field
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, hasTag := sf.Tag.Lookup("toml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if sf.Anonymous && !hasTag && sf.Type.Kind() == reflect.Struct {
			out = append(out, fields(v.Field(i))...)
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out = append(out, field{key: name, comment: sf.Tag.Get("comment"), v: v.Field(i)})
	}
	return out
}

// isTable reports whether values of type t are written as a [table].
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !isText(t)
}

// isText reports whether t is written as the string of its MarshalText.
func isText(t reflect.Type) bool {
	tm := reflect.TypeFor[encoding.TextMarshaler]()
	return t.Implements(tm) || reflect.PointerTo(t).Implements(tm)
}

// table writes the keys of struct v, then its sub-tables. commented writes
// every line as a comment, for a template of a value that is not set.
func (t *template) table(path []string, v reflect.Value, commented bool) error {
	fs := fields(v)
	var tables, arrays []field
	for _, f := range fs {
		ft := f.v.Type()
		switch {
		case isTable(ft):
			tables = append(tables, f)
			continue
		case ft.Kind() == reflect.Slice && isTable(ft.Elem()):
			arrays = append(arrays, f)
			continue
		}
		t.comment(f.comment)
		val, set := f.v, true
		switch val.Kind() {
		case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface:
			if val.IsNil() {
				set = false
				val = reflect.Zero(ft)
				if ft.Kind() == reflect.Pointer {
					val = reflect.Zero(ft.Elem())
				}
			}
		}
		line, err := appendValue([]byte(tomlKey(f.key)+" = "), val)
		if err != nil {
			return fmt.Errorf("key %s: %w", strings.Join(append(path, f.key), "."), err)
		}
		t.line(commented || !set, line)
	}
	for _, f := range tables {
		p := append(slices.Clip(path), f.key)
		t.buf.WriteByte('\n')
		t.comment(f.comment)
		t.line(commented, []byte("["+tomlPath(p)+"]"))
		if err := t.table(p, f.v, commented); err != nil {
			return err
		}
	}
	for _, f := range arrays {
		p := append(slices.Clip(path), f.key)
		n := f.v.Len()
		if n == 0 {
			t.buf.WriteByte('\n')
			t.comment(f.comment)
			t.line(true, []byte("[["+tomlPath(p)+"]]"))
			if err := t.table(p, reflect.Zero(f.v.Type().Elem()), true); err != nil {
				return err
			}
		}
		for i := 0; i < n; i++ {
			t.buf.WriteByte('\n')
			if i == 0 {
				t.comment(f.comment)
			}
			t.line(commented, []byte("[["+tomlPath(p)+"]]"))
			if err := t.table(p, f.v.Index(i), commented); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *template) comment(c string) {
	if c == "" {
		return
	}
	for l := range strings.SplitSeq(c, "\n") {
		t.buf.WriteString(strings.TrimRight("# "+l, " "))
		t.buf.WriteByte('\n')
	}
}

func (t *template) line(commented bool, l []byte) {
	if commented {
		t.buf.WriteString("# ")
	}
	t.buf.Write(l)
	t.buf.WriteByte('\n')
}

func tomlPath(p []string) string {
	q := make([]string, len(p))
	for i, k := range p {
		q[i] = tomlKey(k)
	}
	return strings.Join(q, ".")
}

func tomlKey(k string) string {
	if isBareKey(k) {
		return k
	}
	return string(appendString(nil, k))
}

// appendValue appends v as a TOML value.
func appendValue(b []byte, v reflect.Value) ([]byte, error) {
	t := v.Type()
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return appendString(b, time.Duration(v.Int()).String()), nil
	case isText(t):
		if !t.Implements(reflect.TypeFor[encoding.TextMarshaler]()) {
			pv := reflect.New(t)
			pv.Elem().Set(v)
			v = pv
		}
		text, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return nil, err
		}
		return appendString(b, string(text)), nil
	}
	switch v.Kind() {
	case reflect.String:
		return appendString(b, v.String()), nil
	case reflect.Bool:
		return strconv.AppendBool(b, v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.Uint() > math.MaxInt64 {
			return nil, fmt.Errorf("%d does not fit a TOML integer", v.Uint())
		}
		return strconv.AppendUint(b, v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return appendFloat(b, v.Float(), t.Bits()), nil
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, fmt.Errorf("nil %s inside a value", t)
		}
		return appendValue(b, v.Elem())
	case reflect.Slice, reflect.Array:
		b = append(b, '[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b = append(b, ", "...)
			}
			var err error
			if b, err = appendValue(b, v.Index(i)); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map key type %s is not a string", t.Key())
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		if len(keys) == 0 {
			return append(b, "{}"...), nil
		}
		b = append(b, "{ "...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = append(b, tomlKey(k.String())+" = "...)
			var err error
			if b, err = appendValue(b, v.MapIndex(k)); err != nil {
				return nil, err
			}
		}
		return append(b, " }"...), nil
	}
	return nil, fmt.Errorf("unsupported type %s", t)
}

func appendFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsInf(f, 1):
		return append(b, "inf"...)
	case math.IsInf(f, -1):
		return append(b, "-inf"...)
	case math.IsNaN(f):
		return append(b, "nan"...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, bits)
	// A TOML float needs a fraction or an exponent; "3" would be an integer.
	if !bytes.ContainsAny(b[start:], ".e") {
		b = append(b, ".0"...)
	}
	return b
}

// appendString appends s as a TOML basic string. TOML has no \x escape, so
// control characters use \u, and invalid UTF-8 becomes U+FFFD because a TOML
// document must be valid UTF-8.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch r {
		case '"':
			b = append(b, `\"`...)
		case '\\':
			b = append(b, `\\`...)
		case '\n':
			b = append(b, `\n`...)
		case '\t':
			b = append(b, `\t`...)
		case '\r':
			b = append(b, `\r`...)
		default:
			if r < 0x20 || r == 0x7f {
				b = fmt.Appendf(b, `\u%04X`, r)
				continue
			}
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// LoadValidated reads the TOML file path over cfg (the defaults) with
// LoadConfig and validates the result, so that a mode's Load is one line.
func LoadValidated[C any, P interface {
	*C
	Validate() error
}](path string, cfg C) (C, error) {
	if err := LoadConfig(path, &cfg); err != nil {
		return cfg, err
	}
	if err := P(&cfg).Validate(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}
