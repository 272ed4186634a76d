package core

import (
	"sync/atomic"
	"testing"
)

func TestGroupWaitsAndRefusesOnceClosing(t *testing.T) {
	var g Group
	release := make(chan struct{})
	var ran atomic.Int32
	for range 3 {
		if !g.Go(func() { <-release; ran.Add(1) }) {
			t.Fatal("Go refused before Close")
		}
	}
	close(release)
	g.Close()
	if got := ran.Load(); got != 3 {
		t.Fatalf("Close returned with %d of 3 goroutines done", got)
	}
	if g.Go(func() { t.Error("a goroutine ran after Close") }) {
		t.Fatal("Go accepted after Close")
	}
	g.Close() // idempotent
}
