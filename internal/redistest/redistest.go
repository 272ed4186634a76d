// Package redistest runs real redis-server processes for tests: each on a
// free loopback port, without persistence, stopped when the test ends. A test
// that needs Redis fails when redis-server cannot be started; it never skips
// and never touches a Redis it did not start.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Server is one redis-server process. Its methods are safe for concurrent
// use.
type Server struct {
	port int
	dir  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result once
}

// Start starts a redis-server for the test and stops it when the test ends;
// the test fails at once when the server cannot start.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// New starts a redis-server on a free loopback port, keeping its working
// files in dir, and returns once it answers PING.
func New(dir string) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("cannot start redis-server (run `make deps` to install it): %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("cannot find a free port for redis-server: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{port: port, dir: dir}
	if err := s.Restart(); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Restart starts the server again on the same port after Kill; the data is
// gone. It returns once the server answers PING.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("redis-server is running already")
	}
	var lastErr error
	// The port can still be held for a moment by a process just killed.
	for range 3 {
		out := &bytes.Buffer{}
		cmd := exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", s.dir)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("cannot start redis-server: %w", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		err := waitReady(s.Addr(), exited)
		if err == nil {
			s.cmd, s.exited = cmd, exited
			return nil
		}
		if !errors.Is(err, errExited) {
			cmd.Process.Kill()
			<-exited
		}
		lastErr = fmt.Errorf("redis-server on port %d did not come up: %w\n%s", s.port, err, out)
		time.Sleep(100 * time.Millisecond)
	}
	return lastErr
}

var errExited = errors.New("redis-server exited")

// waitReady polls PING until the server answers, it exits, or 10 s pass.
func waitReady(addr string, exited chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("%w: %v", errExited, err)
		default:
		}
		if ping(addr) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("no answer to PING after 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping sends PING and expects +PONG.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Kill stops the server at once (SIGKILL), as a crash would, and waits for
// the process to end. It does nothing when the server is not running.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// Close stops the server; it is Kill under the name tests clean up with.
func (s *Server) Close() { s.Kill() }
