//go:build linux

package ebpf

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"

	"github.com/edgeless-go/edgeless/internal/testutil"
)

// dropTo attaches to the loopback's ingress a classifier that drops IPv4 TCP
// segments to port, until the returned link is closed.
func dropTo(t *testing.T, port int) link.Link {
	t.Helper()
	const tcxNext, tcxDrop = -1, 2
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SchedCLS,
		License: "MIT",
		Instructions: asm.Instructions{
			// Absolute loads read the packet from its Ethernet header
			// (the loopback has one) and need the context in R6.
			asm.Mov.Reg(asm.R6, asm.R1),
			asm.LoadAbs(12, asm.Half), // EtherType
			asm.JNE.Imm(asm.R0, 0x0800, "pass"),
			asm.LoadAbs(14+9, asm.Byte), // IP protocol
			asm.JNE.Imm(asm.R0, 6, "pass"),
			asm.LoadAbs(14+20+2, asm.Half), // TCP destination port; no IP options on the loopback
			asm.JNE.Imm(asm.R0, int32(port), "pass"),
			asm.Mov.Imm(asm.R0, tcxDrop),
			asm.Return(),
			asm.Mov.Imm(asm.R0, tcxNext).WithSymbol("pass"),
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("cannot load the dropper: %v", err)
	}
	t.Cleanup(func() { prog.Close() })
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: lo.Index, Program: prog, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		t.Skipf("cannot attach a tcx classifier to lo: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestTCPRetransmits drops a connection's segments to the dataplane port
// until the sender retransmits, then lets them through.
func TestTCPRetransmits(t *testing.T) {
	ln, port := listen(t)
	p := startProbes(t, port)
	before := p.Snapshot()

	const n = 4 << 10
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(io.LimitReader(c, n))
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	drop := dropTo(t, port)
	want := bytes.Repeat([]byte{'r'}, n)
	if _, err := c.Write(want); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "a retransmit", func() bool { return p.Snapshot().TCPRetransmits > before.TCPRetransmits })
	if err := drop.Close(); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("server read %d bytes, want %d", len(b), n)
	}
	t.Logf("retransmits %d", p.Snapshot().TCPRetransmits-before.TCPRetransmits)
}
