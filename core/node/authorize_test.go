package node

import (
	"testing"

	"github.com/edgeless-go/edgeless/wire"
)

// TestAuthorizeControl: the orchestrator may call every method; the
// controller only invokes; nodes and clients call nothing.
func TestAuthorizeControl(t *testing.T) {
	f := func(role, method string, allowed bool) {
		t.Helper()
		if err := authorizeControl(wire.Identity{Role: role, ID: "x"}, method); (err == nil) != allowed {
			t.Errorf("%s calling %s: err %v, want allowed %v", role, method, err, allowed)
		}
	}
	f(wire.RoleOrchestrator, wire.MethodNodeStartFunction, true)
	f(wire.RoleOrchestrator, wire.MethodNodeInvoke, true)
	f(wire.RoleController, wire.MethodNodeInvoke, true)
	f(wire.RoleController, wire.MethodNodeStartFunction, false)
	f(wire.RoleController, wire.MethodNodeStop, false)
	f(wire.RoleController, wire.MethodNodeReset, false)
	f(wire.RoleNode, wire.MethodNodeInvoke, false)
	f(wire.RoleClient, wire.MethodNodeInvoke, false)
}
