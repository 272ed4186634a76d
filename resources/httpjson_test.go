package resources

import (
	"bytes"
	"encoding/json"
	"maps"
	"testing"
)

func TestHTTPJSONEncode(t *testing.T) {
	f := func(got []byte, want string) {
		t.Helper()
		if string(got) != want {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
		if !json.Valid(got) {
			t.Fatalf("not valid JSON: %s", got)
		}
	}
	f((&HTTPResponse{Body: []byte("World"), Status: 200}).AppendJSON(nil),
		`{"body":[87,111,114,108,100],"status":200,"headers":{}}`)
	f((&HTTPResponse{Status: 404, Headers: map[string]string{"x": "a\"b\\\n\x01é\xff"}}).AppendJSON(nil),
		`{"body":null,"status":404,"headers":{"x":"a\"b\\\n\u0001é`+"\ufffd"+`"}}`)
	f((&HTTPRequest{Method: "Post", Protocol: "HTTP", Host: "h:1", Path: "/p?q=1", Body: []byte{}, Headers: map[string]string{}}).AppendJSON(nil),
		`{"method":"Post","protocol":"HTTP","host":"h:1","path":"/p?q=1","body":[],"headers":{}}`)
}

func TestHTTPJSONParse(t *testing.T) {
	f := func(in string, want HTTPResponse, wantErr bool) {
		t.Helper()
		var got HTTPResponse
		err := ParseHTTPResponse([]byte(in), &got)
		if (err != nil) != wantErr {
			t.Fatalf("%s: err = %v, want error %v", in, err, wantErr)
		}
		if err != nil {
			return
		}
		if got.Status != want.Status || !bytes.Equal(got.Body, want.Body) || (got.Body == nil) != (want.Body == nil) ||
			!maps.Equal(got.Headers, want.Headers) {
			t.Fatalf("%s: got %+v, want %+v", in, got, want)
		}
	}
	f(`{"body":[87,111,114,108,100],"status":200,"headers":{}}`, HTTPResponse{Body: []byte("World"), Status: 200}, false)
	f(` { "headers" : {"Content-Type":"text/plain","x":"\u00e9\ud83d\ude00\n"} , "status":201, "body": null, "extra":[1,{"a":[]},"s",true,null,-1.5e3] } `,
		HTTPResponse{Status: 201, Headers: map[string]string{"Content-Type": "text/plain", "x": "é😀\n"}}, false)
	f(`{"body":"plain","status":200}`, HTTPResponse{Body: []byte("plain"), Status: 200}, false)
	f(`{"body":[],"status":204,"headers":null}`, HTTPResponse{Body: []byte{}, Status: 204}, false)
	f(`{"body":[256],"status":200,"headers":{}}`, HTTPResponse{}, true)
	f(`{"body":[1,],"status":200,"headers":{}}`, HTTPResponse{}, true)
	f(`{"body":[1],"headers":{}}`, HTTPResponse{}, true)
	f(`{"body":[1],"status":99999,"headers":{}}`, HTTPResponse{}, true)
	f(`{"status":200}x`, HTTPResponse{}, true)
	f(`{"status":200,"headers":{"a":1}}`, HTTPResponse{}, true)
	f(`[]`, HTTPResponse{}, true)
	f(``, HTTPResponse{}, true)

	var req HTTPRequest
	in := `{"method":"Post","protocol":"Unknown","host":"demo.edgeless.com","path":"/hello","body":[104,105],"headers":{"content-type":"text/plain"}}`
	if err := ParseHTTPRequest([]byte(in), &req); err != nil {
		t.Fatal(err)
	}
	if req.Method != "Post" || req.Protocol != "Unknown" || req.Host != "demo.edgeless.com" || req.Path != "/hello" ||
		string(req.Body) != "hi" || req.Headers["content-type"] != "text/plain" {
		t.Fatalf("got %+v", req)
	}
	if got := req.AppendJSON(nil); string(got) != in {
		t.Fatalf("round trip: got %s, want %s", got, in)
	}
	if err := ParseHTTPRequest([]byte(`{"method":"Options","host":"h","path":"/"}`), &req); err == nil {
		t.Fatal("method Options accepted")
	}
}

func FuzzParseHTTPResponse(f *testing.F) {
	f.Add([]byte(`{"body":[87,111,114,108,100],"status":200,"headers":{}}`))
	f.Add([]byte(`{"body":"x","status":200,"headers":{"a":"\u00e9"},"z":[{"q":[1,2]}]}`))
	f.Add([]byte(`{"method":"Get","protocol":"HTTP","host":"h","path":"/","body":null,"headers":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r HTTPResponse
		if ParseHTTPResponse(data, &r) != nil {
			return
		}
		var again HTTPResponse
		if err := ParseHTTPResponse(r.AppendJSON(nil), &again); err != nil {
			t.Fatalf("re-encoded response does not parse: %v", err)
		}
		var q HTTPRequest
		ParseHTTPRequest(data, &q)
	})
}
