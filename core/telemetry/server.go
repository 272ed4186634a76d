package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

// Server serves a registry's /metrics, and /debug/pprof when enabled.
type Server struct {
	reg   *Registry
	pprof bool
	log   *slog.Logger

	srv  *http.Server
	addr string
	wg   sync.WaitGroup
}

// NewServer prepares a server; it opens no socket.
func NewServer(reg *Registry, pprof bool, log *slog.Logger) *Server {
	return &Server{reg: reg, pprof: pprof, log: log}
}

// Start listens on addr (host:port) and serves until Close.
func (s *Server) Start(addr string) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.reg.Handler())
	if s.pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot serve metrics on %s: %w", addr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: mux}
	limits := core.MetricsLimits()
	limits.Apply(s.srv)
	ln = limits.Listener(ln)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics server failed", "err", err)
		}
	}()
	return nil
}

// Addr returns the address served, once started.
func (s *Server) Addr() string { return s.addr }

// Close stops serving and waits. It is idempotent.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	s.wg.Wait()
	return err
}
