package resources

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

func TestHTTPEgress(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Token")+" "+string(body))
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("pong"))
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	// A port nobody listens on: bind one and close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	p := NewHTTPEgress(HTTPClientConfig{CallTimeout: 5 * time.Second})
	t.Cleanup(func() { p.Close() })
	inst, err := p.Start(StartConfig{Configurations: map[string]string{"timeout_ms": "100"}})
	if err != nil {
		t.Fatal(err)
	}
	src := core.InstanceID{Node: core.NewID(), Component: core.NewID()}
	f := func(req HTTPRequest, wantRet core.CallRet, wantStatus int, wantSeen string) {
		t.Helper()
		ret, reply, err := inst.Call(src, req.AppendJSON(nil))
		if err != nil || ret != wantRet {
			t.Fatalf("%+v: Call = %v, %v; want %v", req, ret, err, wantRet)
		}
		if ret != core.CallReply {
			return
		}
		var resp HTTPResponse
		if err := ParseHTTPResponse(reply, &resp); err != nil {
			t.Fatalf("reply %s: %v", reply, err)
		}
		if resp.Status != wantStatus || string(resp.Body) != "pong" || resp.Headers["x-seen"] != wantSeen {
			t.Fatalf("reply %+v, want %d pong x-seen %q", resp, wantStatus, wantSeen)
		}
	}
	f(HTTPRequest{Method: "Post", Protocol: "HTTP", Host: host, Path: "/a?b=c", Body: []byte("hi"), Headers: map[string]string{"x-token": "t"}},
		core.CallReply, 202, "POST /a?b=c t hi")
	f(HTTPRequest{Method: "Get", Protocol: "Unknown", Host: host, Path: "/"}, core.CallReply, 202, "GET /")
	f(HTTPRequest{Method: "Get", Protocol: "HTTP", Host: closed, Path: "/"}, core.CallErr, 0, "")
	f(HTTPRequest{Method: "Get", Protocol: "HTTP", Host: host, Path: "/slow"}, core.CallErr, 0, "")
	if ret, _, err := inst.Call(src, []byte("not json")); ret != core.CallErr || err != nil {
		t.Fatalf("malformed request: %v, %v; want Err", ret, err)
	}
}

func TestHTTPPoster(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+string(body))
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	p := NewHTTPPoster(HTTPClientConfig{})
	t.Cleanup(func() { p.Close() })
	src := core.InstanceID{}
	plain, err := p.Start(StartConfig{Configurations: map[string]string{"url": srv.URL + "/in"}})
	if err != nil {
		t.Fatal(err)
	}
	b64, err := p.Start(StartConfig{Configurations: map[string]string{"url": srv.URL, "decode_base64": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	plain.Cast(src, []byte("one"))
	b64.Cast(src, []byte("dHdv"))
	b64.Cast(src, []byte("!!not base64"))
	if ret, _, _ := plain.Call(src, []byte("three")); ret != core.CallReply {
		t.Fatalf("call = %v, want Reply", ret)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, "|") != "POST one|POST two|POST three" {
		t.Fatalf("server got %q", got)
	}
	if _, err := p.Start(StartConfig{Configurations: map[string]string{"url": "ftp://x"}}); err == nil {
		t.Fatal("ftp url accepted")
	}
}
