package controller

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/internal/fastserve"
	"github.com/edgeless-go/edgeless/wire"
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
	mux.HandleFunc("GET /html", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html><p>hi</p></html>") })
	mux.HandleFunc("GET /typed", func(w http.ResponseWriter, r *http.Request) {
		setHeader(w, "Content-Type", "application/octet-stream") // not sniffed over
		io.WriteString(w, "<html>")
	})
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
		{"/html", "200 OK", "text/html; charset=utf-8", "<html><p>hi</p></html>"},
		{"/typed", "200 OK", "application/octet-stream", "<html>"},
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

// TestAPIFrontLimits: the controller's API, served by the fasthttp front,
// answers a body over max_workflow_mb 413 from its Content-Length, having
// read no more than fasthttp's 8 KiB pre-read of it, and a header block over
// 64 KiB 431.
func TestAPIFrontLimits(t *testing.T) {
	c := newTestCon(t, func(cfg *Config) {
		cfg.MaxWorkflowMB = 1
		cfg.DomainRegisterURL = wire.MustAddr("127.0.0.1:0")
		cfg.MetricsURL = wire.Addr{}
	})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ask := func(req string) string {
		t.Helper()
		conn, err := net.Dial("tcp", c.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		return strings.TrimSpace(line)
	}
	if got := ask("POST /api/v1/workflows HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2097152\r\n\r\n" + strings.Repeat(" ", 16<<10)); got != "HTTP/1.1 413 Request Entity Too Large" {
		t.Errorf("a 2 MiB body with max_workflow_mb = 1: %q, want 413 before the rest of it", got)
	}
	if got := ask("GET /api/v1/workflows HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n"); got != "HTTP/1.1 431 Request Header Fields Too Large" {
		t.Errorf("a 70 KiB header: %q, want 431", got)
	}
}
