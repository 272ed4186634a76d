package spec

// The controller's HTTP API (/api/v1/…) exchanges these JSON documents.

// StartReply answers POST /api/v1/workflows.
type StartReply struct {
	WorkflowID string `json:"workflow_id"`
}

// ErrorReply is the body of every API error.
type ErrorReply struct {
	Error string `json:"error"`
}

// WorkflowList answers GET /api/v1/workflows.
type WorkflowList struct {
	Workflows []WorkflowInfo `json:"workflows"`
}

// WorkflowInfo is a started workflow: what was asked for and where each of
// its components runs.
type WorkflowInfo struct {
	ID         string          `json:"id"`
	Domain     string          `json:"domain"`
	Started    string          `json:"started"` // RFC 3339
	Components []ComponentInfo `json:"components"`
	Workflow   *Workflow       `json:"workflow,omitempty"` // the request, without code, in inspect replies
}

// ComponentInfo is one function or resource of a started workflow.
type ComponentInfo struct {
	Name      string         `json:"name"`
	Kind      string         `json:"kind"` // "function" or "resource"
	LogicalID string         `json:"logical_id"`
	Instances []InstanceInfo `json:"instances"`
}

// InstanceInfo is one physical instance.
type InstanceInfo struct {
	Node     string `json:"node"`
	Instance string `json:"instance"`
}

// DomainList answers GET /api/v1/domains.
type DomainList struct {
	Domains []DomainInfo `json:"domains"`
}

// DomainInfo is an orchestration domain registered with the controller.
type DomainInfo struct {
	ID        string   `json:"id"`
	Nodes     int      `json:"nodes"`
	Ready     bool     `json:"ready"`
	Runtimes  []string `json:"runtimes"`
	Resources []string `json:"resource_classes"`
}
