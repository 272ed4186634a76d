//go:build wasip1

// Command relay_go exercises the host calls that the other examples do not:
// on init it logs its own identity (Slf); a call is forwarded to output
// "next" and that call's outcome and reply are returned unchanged; a cast is
// sent back to its sender with CastRaw. No init-payload, no state.
package main

import (
	"encoding/hex"

	"github.com/edgeless-go/edgeless/functions/sdk/go/edgeless"
)

type relay struct{ edgeless.Base }

func (relay) HandleInit(payload, state []byte) {
	id := edgeless.Slf()
	edgeless.Log(edgeless.LevelInfo, "relay_go", hex.EncodeToString(id.Node[:])+"/"+hex.EncodeToString(id.Component[:]))
}

func (relay) HandleCast(src edgeless.InstanceID, payload []byte) {
	edgeless.CastRaw(src, payload)
}

func (relay) HandleCall(src edgeless.InstanceID, payload []byte) (edgeless.CallRet, []byte) {
	return edgeless.Call("next", payload)
}

func init() { edgeless.Register(relay{}) }

func main() {}
