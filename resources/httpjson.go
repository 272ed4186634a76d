package resources

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// HTTPRequest is the JSON message EDGELESS functions exchange with the
// http-ingress and http-egress resources (EdgelessHTTPRequest): Method is one
// of Get, Head, Post, Put, Delete, Patch; Protocol is Unknown, HTTP or HTTPS;
// Path holds the path and the query; Body nil is JSON null; header names are
// lower case, as EDGELESS sends them.
type HTTPRequest struct {
	Method   string
	Protocol string
	Host     string
	Path     string
	Body     []byte
	Headers  map[string]string
}

// HTTPResponse is the JSON reply of a function to http-ingress, and of
// http-egress to a function (EdgelessHTTPResponse).
type HTTPResponse struct {
	Body    []byte
	Status  int
	Headers map[string]string
}

// methods maps HTTP methods to EDGELESS's method names, which are the
// variants of a Rust enum.
var methods = [...][2]string{
	{"GET", "Get"}, {"HEAD", "Head"}, {"POST", "Post"}, {"PUT", "Put"}, {"DELETE", "Delete"}, {"PATCH", "Patch"},
}

// edgelessMethod returns EDGELESS's name of an HTTP method, or "" for a method
// EDGELESS cannot express.
func edgelessMethod(httpMethod string) string {
	for _, m := range methods {
		if m[0] == httpMethod {
			return m[1]
		}
	}
	return ""
}

// httpMethod returns the HTTP method of an EDGELESS method name; it accepts
// the HTTP spelling too.
func httpMethod(name string) string {
	for _, m := range methods {
		if m[1] == name || m[0] == name {
			return m[0]
		}
	}
	return ""
}

// AppendJSON appends r as EDGELESS JSON to dst and returns the extended slice.
func (r *HTTPRequest) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"method":`...)
	dst = appendJSONString(dst, r.Method)
	dst = append(dst, `,"protocol":`...)
	dst = appendJSONString(dst, r.Protocol)
	dst = append(dst, `,"host":`...)
	dst = appendJSONString(dst, r.Host)
	dst = append(dst, `,"path":`...)
	dst = appendJSONString(dst, r.Path)
	dst = append(dst, `,"body":`...)
	dst = appendJSONBytes(dst, r.Body)
	dst = append(dst, `,"headers":`...)
	dst = appendJSONHeaders(dst, r.Headers)
	return append(dst, '}')
}

// AppendJSON appends r as EDGELESS JSON to dst and returns the extended slice.
func (r *HTTPResponse) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"body":`...)
	dst = appendJSONBytes(dst, r.Body)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(r.Status), 10)
	dst = append(dst, `,"headers":`...)
	dst = appendJSONHeaders(dst, r.Headers)
	return append(dst, '}')
}

// ParseHTTPRequest decodes EDGELESS JSON into r. Unknown fields are ignored;
// a body may also be given as a JSON string. Body is a new slice.
func ParseHTTPRequest(data []byte, r *HTTPRequest) error {
	*r = HTTPRequest{}
	var method, protocol bool
	err := parseObject(data, func(s *scanner, key []byte) error {
		var err error
		switch string(key) {
		case "method":
			r.Method, err = s.string()
			method = true
		case "protocol":
			r.Protocol, err = s.string()
			protocol = true
		case "host":
			r.Host, err = s.string()
		case "path":
			r.Path, err = s.string()
		case "body":
			r.Body, err = s.bytes()
		case "headers":
			r.Headers, err = s.headers()
		default:
			err = s.skip()
		}
		return err
	})
	switch {
	case err != nil:
		return err
	case !method:
		return errors.New("missing field method")
	case httpMethod(r.Method) == "":
		return errors.New("unknown method " + strconv.Quote(r.Method))
	case !protocol:
		r.Protocol = "Unknown"
	}
	return nil
}

// ParseHTTPResponse decodes EDGELESS JSON into r. Unknown fields are ignored;
// a body may also be given as a JSON string. Body is a new slice.
func ParseHTTPResponse(data []byte, r *HTTPResponse) error {
	*r = HTTPResponse{}
	status := false
	err := parseObject(data, func(s *scanner, key []byte) error {
		var err error
		switch string(key) {
		case "body":
			r.Body, err = s.bytes()
		case "status":
			r.Status, err = s.int()
			status = true
		case "headers":
			r.Headers, err = s.headers()
		default:
			err = s.skip()
		}
		return err
	})
	switch {
	case err != nil:
		return err
	case !status:
		return errors.New("missing field status")
	case r.Status < 100 || r.Status > 999:
		return errors.New("status " + strconv.Itoa(r.Status) + " out of range")
	}
	return nil
}

func appendJSONBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, c := range b {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendUint(dst, uint64(c), 10)
	}
	return append(dst, ']')
}

func appendJSONHeaders(dst []byte, h map[string]string) []byte {
	dst = append(dst, '{')
	first := true
	for k, v := range h {
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, v)
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD,
// since EDGELESS decodes JSON with serde, which rejects it.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// scanner reads the few JSON shapes of the EDGELESS HTTP messages.
type scanner struct {
	b []byte
	i int
}

var errSyntax = errors.New("malformed JSON")

// parseObject calls field for every member of the top-level object in data;
// field must consume the member's value.
func parseObject(data []byte, field func(s *scanner, key []byte) error) error {
	s := &scanner{b: data}
	if !s.consume('{') {
		return errSyntax
	}
	if s.consume('}') {
		return s.end()
	}
	for {
		key, err := s.rawString()
		if err != nil {
			return err
		}
		if !s.consume(':') {
			return errSyntax
		}
		if err := field(s, key); err != nil {
			return err
		}
		if s.consume(',') {
			continue
		}
		if !s.consume('}') {
			return errSyntax
		}
		return s.end()
	}
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, if it is next.
func (s *scanner) consume(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return errSyntax
	}
	return nil
}

func (s *scanner) null() bool {
	s.ws()
	if len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

func (s *scanner) string() (string, error) {
	b, err := s.rawString()
	return string(b), err
}

// rawString decodes a JSON string. The result aliases the input when the
// string has no escapes.
func (s *scanner) rawString() ([]byte, error) {
	if !s.consume('"') {
		return nil, errSyntax
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], nil
		case c == '\\':
			return s.unescape(start)
		case c < 0x20:
			return nil, errSyntax
		}
		s.i++
	}
	return nil, errSyntax
}

func (s *scanner) unescape(start int) ([]byte, error) {
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return out, nil
		case c < 0x20:
			return nil, errSyntax
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, errSyntax
		}
		s.i += 2
		switch s.b[s.i-1] {
		case '"', '\\', '/':
			out = append(out, s.b[s.i-1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, errSyntax
			}
			if r >= 0xd800 && r < 0xdc00 && s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
				s.i += 2
				lo, ok := s.hex4()
				if !ok {
					return nil, errSyntax
				}
				r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
				if lo < 0xdc00 || lo >= 0xe000 {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, errSyntax
		}
	}
	return nil, errSyntax
}

func (s *scanner) hex4() (rune, bool) {
	if len(s.b)-s.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.i : s.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	s.i += 4
	return r, true
}

// int reads a non-negative JSON integer below 2^31.
func (s *scanner) int() (int, error) {
	s.ws()
	start, n := s.i, 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		n = n*10 + int(s.b[s.i]-'0')
		if n > 1<<31 {
			return 0, errSyntax
		}
		s.i++
	}
	if s.i == start {
		return 0, errSyntax
	}
	return n, nil
}

// bytes reads a body: null, an array of byte values, or a string.
func (s *scanner) bytes() ([]byte, error) {
	if s.null() {
		return nil, nil
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '"' {
		b, err := s.rawString()
		return append([]byte{}, b...), err
	}
	if !s.consume('[') {
		return nil, errSyntax
	}
	// A byte takes at least two characters ("0,"), so this bounds the count.
	out := make([]byte, 0, (len(s.b)-s.i)/2+1)
	if s.consume(']') {
		return out, nil
	}
	for {
		n, err := s.int()
		if err != nil || n > 255 {
			return nil, errSyntax
		}
		out = append(out, byte(n))
		if s.consume(',') {
			continue
		}
		if !s.consume(']') {
			return nil, errSyntax
		}
		return out, nil
	}
}

// headers reads an object of strings; null is an empty map.
func (s *scanner) headers() (map[string]string, error) {
	if s.null() {
		return nil, nil
	}
	if !s.consume('{') {
		return nil, errSyntax
	}
	if s.consume('}') {
		return nil, nil
	}
	h := map[string]string{}
	for {
		k, err := s.rawString()
		if err != nil {
			return nil, err
		}
		if !s.consume(':') {
			return nil, errSyntax
		}
		v, err := s.string()
		if err != nil {
			return nil, err
		}
		h[string(k)] = v
		if s.consume(',') {
			continue
		}
		if !s.consume('}') {
			return nil, errSyntax
		}
		return h, nil
	}
}

// skip consumes any JSON value, nested to a bounded depth.
func (s *scanner) skip() error { return s.skipDepth(0) }

func (s *scanner) skipDepth(depth int) error {
	if depth > 64 {
		return errSyntax
	}
	s.ws()
	if s.i >= len(s.b) {
		return errSyntax
	}
	switch c := s.b[s.i]; c {
	case '"':
		_, err := s.rawString()
		return err
	case '{', '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		s.i++
		if s.consume(closing) {
			return nil
		}
		for {
			if c == '{' {
				if _, err := s.rawString(); err != nil {
					return err
				}
				if !s.consume(':') {
					return errSyntax
				}
			}
			if err := s.skipDepth(depth + 1); err != nil {
				return err
			}
			if s.consume(',') {
				continue
			}
			if !s.consume(closing) {
				return errSyntax
			}
			return nil
		}
	default:
		start := s.i
		for s.i < len(s.b) {
			c := s.b[s.i]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			s.i++
		}
		if s.i == start {
			return errSyntax
		}
		return nil
	}
}
