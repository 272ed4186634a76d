package controller

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/fastserve"
)

// TestFastFront: a net/http handler behind the fasthttp front sees the
// request as net/http would hand it over, body streamed, and answers as it
// would through net/http; a panic fails only its request.
func TestFastFront(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo/{name}", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Seen", fmt.Sprintf("%s %s %s q=%s a=%s host=%s tls=%v remote=%v len=%d",
			r.Method, r.URL.Path, r.PathValue("name"), r.URL.Query().Get("q"), r.Header.Get("X-A"), r.Host,
			r.TLS != nil, r.RemoteAddr != "", r.ContentLength))
		w.WriteHeader(http.StatusCreated)
		w.Write(body)
	})
	mux.HandleFunc("GET /text", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "plain words") })
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic("handler bug") })
	log := slog.New(slog.DiscardHandler)
	srv := fastserve.Server(core.APILimits(), 1<<20, true, newFastFront(mux, log).serve, log)
	srv.NoDefaultContentType = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(); ln.Close() })
	base := "http://" + ln.Addr().String()

	// A chunked body of unknown length, larger than fasthttp's pre-read.
	big := strings.Repeat("x", 100<<10)
	pr, pw := io.Pipe()
	go func() { io.WriteString(pw, big); pw.Close() }()
	req, _ := http.NewRequest(http.MethodPost, base+"/echo/fn?q=1", pr)
	req.Header.Set("X-A", "b")
	req.Host = "api.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := "POST /echo/fn fn q=1 a=b host=api.example tls=false remote=true len=-1"
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("X-Seen") != want || string(got) != big {
		t.Fatalf("echo = %d %q, %d bytes; want 201 %q and the body back", resp.StatusCode, resp.Header.Get("X-Seen"), len(got), want)
	}

	for _, c := range []struct {
		path, status, contentType, body string
	}{
		{"/panic", "500 Internal Server Error", "", ""},
		{"/text", "200 OK", "text/plain; charset=utf-8", "plain words"},
		{"/nothing", "404 Not Found", "text/plain; charset=utf-8", "404 page not found\n"},
	} {
		resp, err := http.Get(base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Status != c.status || resp.Header.Get("Content-Type") != c.contentType || string(body) != c.body {
			t.Errorf("GET %s = %s %q %q, want %s %q %q", c.path, resp.Status, resp.Header.Get("Content-Type"), body,
				c.status, c.contentType, c.body)
		}
	}
}
