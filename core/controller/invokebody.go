package controller

import (
	"encoding/json"

	"github.com/edgeless-go/edgeless/core/spec"
)

// apiInvocation is the body of POST /api/v1/invoke/NAME as the front reads
// it: the params stay the JSON the client wrote (see paramsPayload).
type apiInvocation struct {
	spec.InvokeRequest
	Params json.RawMessage `json:"params"` // shadows InvokeRequest's
}

// decodeBody reads data into r as json.Unmarshal would. The usual bodies,
// {"params": {…}} with or without "async", it reads itself: encoding/json's
// reflection, scanner and allocations were 2–3 µs of an invocation's CPU
// under load. Any other body goes to encoding/json, so that both read every
// body alike (TestInvocationBody, FuzzInvocationBody).
func (r *apiInvocation) decodeBody(data []byte) error {
	if r.quick(data) {
		return nil
	}
	return json.Unmarshal(data, r)
}

// quick decodes data if it is a valid JSON object whose members are only
// "params" (an object or null) and "async" (true, false or null), named
// exactly so, without escapes; false when it did not (r is then as it was).
func (r *apiInvocation) quick(data []byte) bool {
	if !json.Valid(data) {
		return false // encoding/json says what is wrong
	}
	// Valid JSON from here on: every scan below ends inside data.
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return false
	}
	var params []byte
	async := r.Async
	for i = skipSpace(data, i+1); data[i] != '}'; {
		j := i + 1
		for ; data[j] != '"'; j++ {
			if data[j] == '\\' {
				return false
			}
		}
		key := data[i+1 : j]
		i = skipSpace(data, skipSpace(data, j+1)+1) // past the colon
		end := valueEnd(data, i)
		val := data[i:end]
		switch string(key) {
		case "params":
			if val[0] != '{' && string(val) != "null" {
				return false
			}
			params = val
		case "async":
			switch string(val) {
			case "true":
				async = true
			case "false":
				async = false
			case "null": // leaves it, as encoding/json does
			default:
				return false
			}
		default:
			return false
		}
		if i = skipSpace(data, end); data[i] == ',' {
			i = skipSpace(data, i+1)
		}
	}
	if params != nil {
		r.Params = append(r.Params[:0:0], params...) // data is a pooled buffer
	}
	r.Async = async
	return true
}

// skipSpace returns the index of the first byte of data from i that is not
// JSON whitespace.
func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the JSON value that starts at i of
// valid JSON data.
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch data[i] {
			case '"':
				i = stringEnd(data, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(data) && data[i] != ',' && data[i] != '}' && data[i] != ']' && data[i] != ' ' &&
		data[i] != '\t' && data[i] != '\n' && data[i] != '\r' {
		i++
	}
	return i
}

// stringEnd returns the index just past the JSON string that starts at i.
func stringEnd(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i + 1
}
