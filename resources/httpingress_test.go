package resources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

func startIngress(t *testing.T, maxBody int64) *HTTPIngress {
	t.Helper()
	p, err := NewHTTPIngress(HTTPIngressConfig{Addr: "127.0.0.1:0", MaxBodyBytes: maxBody, CallTimeout: time.Second, AllowCatchAll: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Listen(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func TestHTTPIngress(t *testing.T) {
	p := startIngress(t, 64)
	wf := core.NewID()
	echo := &fakeHost{reply: func(payload []byte) (core.CallRet, []byte, error) {
		var req HTTPRequest
		if err := ParseHTTPRequest(payload, &req); err != nil {
			return core.CallErr, nil, nil
		}
		switch req.Path {
		case "/hello":
			resp := HTTPResponse{Body: []byte("World"), Status: 200, Headers: map[string]string{"x-method": req.Method, "x-host": req.Host}}
			return core.CallReply, resp.AppendJSON(nil), nil
		case "/echo":
			resp := HTTPResponse{Body: req.Body, Status: 201, Headers: map[string]string{"x-ct": req.Headers["content-type"]}}
			return core.CallReply, resp.AppendJSON(nil), nil
		case "/headers?q=1":
			_, hasHost := req.Headers["host"]
			body := fmt.Sprintf("%s|%t|%s", req.Headers["x-tag"], hasHost, req.Headers["content-type"])
			return core.CallReply, (&HTTPResponse{Body: []byte(body), Status: 200}).AppendJSON(nil), nil
		case "/none":
			return core.CallNoReply, nil, nil
		case "/err":
			return core.CallErr, nil, nil
		case "/garbage":
			return core.CallReply, []byte("World"), nil
		}
		return core.CallReply, (&HTTPResponse{Status: 404}).AppendJSON(nil), nil
	}}
	raw := &fakeHost{reply: func(payload []byte) (core.CallRet, []byte, error) {
		return core.CallReply, append([]byte("raw:"), payload...), nil
	}}
	async := &fakeHost{}
	start := func(h Host, conf map[string]string) Instance {
		t.Helper()
		i, err := p.Start(StartConfig{Workflow: wf, Configurations: conf, Host: h})
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	start(echo, map[string]string{"host": "demo.edgeless.com", "method": "GET,POST"})
	start(raw, map[string]string{"host": "raw.example", "methods": "POST", "enforce_methods": "true", "mode": "raw"})
	// EDGELESS's http_ingress example sets `methods`, which its code does not
	// read: every method matches.
	start(echo, map[string]string{"host": "methods.example", "methods": "POST"})
	start(async, map[string]string{"host": "async.example", "async": "true", "wf_id": "true", "encode_base64": "true"})
	gone := start(echo, map[string]string{"host": "gone.example"})
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}

	f := func(method, host, path, body string, wantStatus int, wantBody string, wantHeader ...string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+p.Addr()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Add("X-Tag", "a")
		req.Header.Add("X-Tag", "b")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus || strings.TrimSpace(string(got)) != wantBody {
			t.Fatalf("%s %s%s: %d %q, want %d %q", method, host, path, resp.StatusCode, got, wantStatus, wantBody)
		}
		for k := 0; k+1 < len(wantHeader); k += 2 {
			if v := resp.Header.Get(wantHeader[k]); v != wantHeader[k+1] {
				t.Fatalf("%s %s%s: header %s = %q, want %q", method, host, path, wantHeader[k], v, wantHeader[k+1])
			}
		}
	}
	f("GET", "demo.edgeless.com", "/hello", "", 200, "World", "X-Method", "Get", "X-Host", "demo.edgeless.com")
	f("POST", "DEMO.edgeless.com:8080", "/hello", "x", 200, "World", "X-Method", "Post")
	f("POST", "demo.edgeless.com", "/echo", "bytes \x00\xff", 201, "bytes \x00\xff", "X-Ct", "text/plain")
	f("POST", "demo.edgeless.com", "/echo", strings.Repeat("b", 65), 413, "Request Entity Too Large")
	f("PUT", "demo.edgeless.com", "/hello", "", 404, "Not Found")
	// The function sees net/http's view of the headers: repeated ones
	// joined, no Host; and the path with its query.
	f("GET", "demo.edgeless.com", "/headers?q=1", "", 200, "a, b|false|text/plain", "Content-Type", "text/plain; charset=utf-8")
	f("GET", "unknown.example", "/hello", "", 404, "Not Found")
	f("GET", "gone.example", "/hello", "", 404, "Not Found")
	f("OPTIONS", "demo.edgeless.com", "/hello", "", 405, "Method Not Allowed")
	f("GET", "demo.edgeless.com", "/none", "", 404, "Not Found")
	f("GET", "demo.edgeless.com", "/err", "", 500, "Internal Server Error")
	f("GET", "demo.edgeless.com", "/garbage", "", 502, "Bad Gateway")
	f("POST", "raw.example", "/any", "body", 200, "raw:body")
	f("GET", "raw.example", "/any", "", 404, "Not Found")
	f("GET", "methods.example", "/hello", "", 200, "World")
	f("POST", "methods.example", "/hello", "", 200, "World")
	f("POST", "async.example", "/?wf_id="+wf.String(), "hello", 200, "OK")
	f("POST", "async.example", "/?wf_id="+core.NewID().String(), "hello", 404, "Not Found")
	f("POST", "async.example", "/", "hello", 404, "Not Found")
	if got := async.Casts(); len(got) != 1 || got[0] != "new_request=aGVsbG8=" {
		t.Fatalf("async casts = %q, want one base64 hello", got)
	}
}

func TestHTTPIngressTimeout(t *testing.T) {
	p := startIngress(t, 1024)
	h := &fakeHost{reply: func([]byte) (core.CallRet, []byte, error) {
		time.Sleep(150 * time.Millisecond) // the node's timer, shortened
		return core.CallErr, nil, errors.New("call timed out")
	}}
	if _, err := p.Start(StartConfig{Configurations: map[string]string{"timeout_ms": "100"}, Host: h}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + p.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504", resp.StatusCode)
	}
}

func TestHTTPIngressConfigErrors(t *testing.T) {
	p, err := NewHTTPIngress(HTTPIngressConfig{Addr: "127.0.0.1:0", MaxBodyBytes: 1, AllowCatchAll: true})
	if err != nil {
		t.Fatal(err)
	}
	f := func(conf map[string]string, want string) {
		t.Helper()
		_, err := p.Start(StartConfig{Configurations: conf, Host: &fakeHost{}})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%v: err = %v, want %q", conf, err, want)
		}
	}
	f(map[string]string{"method": "GET,FETCH"}, `unknown method "FETCH"`)
	f(map[string]string{"mode": "binary"}, `want json or raw`)
	f(map[string]string{"timeout_ms": "-1"}, `"timeout_ms"`)
}

// TestHTTPIngressHostOwner: a host belongs to the workflow that claimed it
// first; a catch-all host needs the operator's consent.
func TestHTTPIngressHostOwner(t *testing.T) {
	p, err := NewHTTPIngress(HTTPIngressConfig{Addr: "127.0.0.1:0", MaxBodyBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	start := func(wf core.ID, host string) error {
		_, err := p.Start(StartConfig{Workflow: wf, Configurations: map[string]string{"host": host}, Host: &fakeHost{}})
		return err
	}
	a, b := core.NewID(), core.NewID()
	if err := start(a, "Shop.Example.com"); err != nil {
		t.Fatal(err)
	}
	if err := start(a, "shop.example.com:80"); err != nil {
		t.Fatalf("a second instance of the owner: %v", err)
	}
	if err := start(b, "shop.example.com"); err == nil || !strings.Contains(err.Error(), "belongs to workflow "+a.String()) {
		t.Fatalf("another workflow's claim: %v", err)
	}
	for _, host := range []string{"", "*"} {
		if err := start(b, host); err == nil || !strings.Contains(err.Error(), "http_ingress_allow_catch_all") {
			t.Fatalf("catch-all %q without consent: %v", host, err)
		}
	}
}

// TestHTTPIngressAsyncRefused: an asynchronous request whose event cannot be
// queued (the target's mailbox is full) is answered 503, never 200.
func TestHTTPIngressAsyncRefused(t *testing.T) {
	p := startIngress(t, 1024)
	h := &fakeHost{castErr: errors.New("mailbox full")}
	if _, err := p.Start(StartConfig{Configurations: map[string]string{"host": "busy.example", "async": "true"}, Host: h}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.Addr()+"/", strings.NewReader("x"))
	req.Host = "busy.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "mailbox full") {
		t.Fatalf("answered %d %q, want 503 naming the reason", resp.StatusCode, body)
	}
}

// TestHTTPIngressLimits: a header block past the per-connection buffer is
// refused with 431.
func TestHTTPIngressLimits(t *testing.T) {
	p := startIngress(t, 64)
	req, err := http.NewRequest(http.MethodGet, "http://"+p.Addr()+"/hello", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "demo.edgeless.com"
	req.Header.Set("X-Big", strings.Repeat("a", core.IngressLimits().HeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a %d-byte header answered %d %q, want 431", core.IngressLimits().HeaderBytes, resp.StatusCode, body)
	}
}

// TestHTTPIngressCloseAtOnce: Close right after Listen returns, and frees
// the port, however soon the server's goroutine runs.
func TestHTTPIngressCloseAtOnce(t *testing.T) {
	for range 200 {
		p, err := NewHTTPIngress(HTTPIngressConfig{Addr: "127.0.0.1:0", MaxBodyBytes: 64})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Listen(context.Background()); err != nil {
			t.Fatal(err)
		}
		addr := p.Addr()
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("the port outlived Close: %v", err)
		}
		l.Close()
	}
}
