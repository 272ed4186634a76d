package wire

import "github.com/edgeless-go/edgeless/core"

// MethodOrcRoutes tells the controller where standalone functions' instances
// run, so that it can invoke them on their nodes directly (served by the
// orchestrator, like every orc.* method).
const MethodOrcRoutes = "orc.Routes"

// Routes asks an orchestrator for the routes of some functions.
type Routes struct {
	Functions []RouteQuery `msgpack:"functions"`
}

// RouteQuery asks for one function's route.
type RouteQuery struct {
	Logical core.ID `msgpack:"logical"`
	// Version is that of the route the caller holds (0: none): when it is
	// still current, the answer carries only the version.
	Version uint64 `msgpack:"version"`
	// Used says the caller invoked the function directly since its last
	// query: the orchestrator counts it as a use of the function, as it
	// counts the invocations that pass through it, before scaling it to
	// zero.
	Used bool `msgpack:"used"`
}

// RoutesResponse answers Routes: one Route per query, in the same order.
type RoutesResponse struct {
	Routes []Route `msgpack:"routes"`
}

// Route is where a function's instances run. Version changes whenever the
// instances, their nodes' addresses or ViaOrchestrator change.
type Route struct {
	Version   uint64          `msgpack:"version"`
	Gone      bool            `msgpack:"gone"` // the orchestrator has no such function
	Instances []RouteInstance `msgpack:"instances"`
	// ViaOrchestrator says that invocations allowed to be offloaded must
	// pass through the orchestrator, whose scheduling policy (edge-cloud)
	// chooses between tiers per request.
	ViaOrchestrator bool `msgpack:"via_orchestrator"`
}

// RouteInstance is one instance of a function and the dataplane address of
// its node.
type RouteInstance struct {
	Instance core.InstanceID `msgpack:"instance"`
	Addr     string          `msgpack:"addr"`
}
