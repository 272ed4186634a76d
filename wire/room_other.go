//go:build !linux

package wire

import "net"

// sendRoom: elsewhere than on Linux the room in a socket's send buffer is
// not known, and Flush always leaves the write to the writer.
type sendRoom struct{}

func newSendRoom(net.Conn) *sendRoom { return nil }

func (*sendRoom) fits(int) bool { return false }

func (*sendRoom) wrote(int) {}
