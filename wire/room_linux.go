package wire

import (
	"crypto/tls"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendRoom tells whether a socket's send buffer can take more bytes without
// the write blocking: a sender writing on its own thread must not wait on a
// peer that stopped reading. A nil sendRoom has no room. Not safe for
// concurrent use (the Client's mutex guards it).
type sendRoom struct {
	raw   syscall.RawConn
	limit int // bytes the buffer may hold, unsent and unacknowledged, before a write is left to the writer
	// probe reads the bytes queued into queued; built once, so that a
	// check allocates no closure.
	probe  func(fd uintptr)
	queued int
	err    error
	// credit is what the last probe left of limit, less what was written
	// since: a lower bound of the room (acknowledgements only add to it),
	// so that most checks need no system call.
	credit int
}

// recordOverhead is what a write may add to its bytes on the socket: TLS's
// record header and tag.
const recordOverhead = 64

func newSendRoom(conn net.Conn) *sendRoom {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var size int
	if err := raw.Control(func(fd uintptr) {
		size, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	}); err != nil || size <= 0 {
		return nil
	}
	// The kernel charges a buffer's memory, headers and all, against
	// SO_SNDBUF, not its bytes: a quarter leaves ample margin.
	r := &sendRoom{raw: raw, limit: size / 4}
	r.probe = func(fd uintptr) { r.queued, r.err = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }
	return r
}

// fits reports whether n more bytes can be written without blocking.
func (r *sendRoom) fits(n int) bool {
	if r == nil || n > r.limit {
		return false
	}
	if n+recordOverhead <= r.credit {
		return true
	}
	if err := r.raw.Control(r.probe); err != nil || r.err != nil {
		return false
	}
	r.credit = r.limit - r.queued
	return n+recordOverhead <= r.credit
}

// wrote accounts for n bytes written to the socket, by anyone.
func (r *sendRoom) wrote(n int) {
	if r != nil {
		r.credit -= n + recordOverhead
	}
}
