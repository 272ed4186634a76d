package wire

import (
	"net"
	"testing"
)

// The room is probed only when what earlier probes left, less what was
// written since, is short of a write.
func TestSendRoomProbesOnlyWhenShort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := newSendRoom(rawConn(t, ln.Addr().String()))
	if r == nil {
		t.Fatal("no send room for a TCP connection")
	}
	probes := 0
	probe := r.probe
	r.probe = func(fd uintptr) { probes++; probe(fd) }
	step := func(n, wantProbes int, wantFits bool) {
		t.Helper()
		if got := r.fits(n); got != wantFits || probes != wantProbes {
			t.Fatalf("fits(%d) = %v after %d probes, want %v after %d", n, got, probes, wantFits, wantProbes)
		}
		if wantFits {
			r.wrote(n)
		}
	}
	step(1000, 1, true)       // nothing known: probed
	step(1000, 1, true)       // within what the probe left
	step(r.limit+1, 1, false) // more than the socket may ever hold: no probe needed
	r.wrote(r.credit)         // the credit spent (say, by the writer)
	step(1000, 2, true)       // probed again: the peer has not read, but the buffer is far from full
}
