package controller

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeless-go/edgeless/wire"
)

// TestFailedStartClosesWhatItOpened: a controller whose API address is taken
// fails to start, and the domain listener it opened first is closed again
// (its port can be bound), and Close after the failure is harmless.
func TestFailedStartClosesWhatItOpened(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	domainAddr := free.Addr().String()
	free.Close()

	cfg := Default()
	cfg.ControllerURL = MustAPIURL("http://" + taken.Addr().String())
	cfg.DomainRegisterURL = wire.MustAddr(domainAddr)
	cfg.PersistenceFilename = filepath.Join(t.TempDir(), "controller.save")
	cfg.MetricsURL = wire.Addr{}
	cfg.TokensPath = ""
	cfg.TLS.Enabled = false
	c, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot listen for the API") {
		t.Fatalf("Start = %v, want the API address refused", err)
	}
	l, err := net.Listen("tcp", domainAddr)
	if err != nil {
		t.Fatalf("the domain listener outlived the failed start: %v", err)
	}
	l.Close()
	if err := c.Close(); err != nil {
		t.Fatalf("Close after a failed start: %v", err)
	}
}
