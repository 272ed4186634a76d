//go:build wasip1

// Command double_go is the Go SDK's double: a cast "x" is answered by
// casting "2x" to output "output", a call "x" by the reply "2x". Input that
// is not a 64-bit decimal integer, or a result that overflows, fails the
// call with Err, or is logged as an error for a cast.
package main

import (
	"strconv"
	"strings"

	"github.com/edgeless-go/edgeless/functions/sdk/go/edgeless"
)

type double struct{ edgeless.Base }

func compute(payload []byte) ([]byte, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(string(payload)), 10, 64)
	if err != nil || n > 1<<62-1 || n < -(1<<62) {
		return nil, false
	}
	return strconv.AppendInt(nil, 2*n, 10), true
}

func (double) HandleCast(src edgeless.InstanceID, payload []byte) {
	out, ok := compute(payload)
	if !ok {
		edgeless.Log(edgeless.LevelError, "double_go", "input is not a 64-bit integer or the result overflows")
		return
	}
	edgeless.Cast("output", out)
}

func (double) HandleCall(src edgeless.InstanceID, payload []byte) (edgeless.CallRet, []byte) {
	out, ok := compute(payload)
	if !ok {
		return edgeless.Err, nil
	}
	return edgeless.Reply, out
}

func init() { edgeless.Register(double{}) }

func main() {}
