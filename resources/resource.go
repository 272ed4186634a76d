package resources

import (
	"context"
	"fmt"
	"sort"

	"github.com/edgeless-go/edgeless/core"
)

// Host is what a resource instance needs from its node. Its methods are safe
// to call from any goroutine, concurrently; payloads are copied before they
// return.
type Host interface {
	// Cast queues payload for the target mapped to output. The error says
	// it was not queued: an unmapped output, a target whose mailbox is full or
	// whose node is unreachable; a nil error means it will be delivered.
	Cast(output string, payload []byte) error
	// Call sends payload to the target mapped to output and waits for its
	// result, until ctx ends or the node's call timeout passes. The reply is
	// the caller's. An unmapped output or an unreachable target is an error.
	Call(ctx context.Context, output string, payload []byte) (core.CallRet, []byte, error)
}

// Instance is a running resource. The node calls Cast and Call from one
// goroutine at a time; payloads are loaned for the duration of the call.
type Instance interface {
	Cast(src core.InstanceID, payload []byte) error
	// Call returns the reply, which the node copies before the next call.
	Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error)
	// Close releases what the instance holds; it is called once.
	Close() error
}

// Spec describes a provider's resource class for users and orchestrators.
type Spec struct {
	ClassType      string            `json:"class_type"`
	Version        string            `json:"version"`
	Description    string            `json:"description"`
	Outputs        []string          `json:"outputs"`
	Configurations map[string]string `json:"configurations"` // key → meaning
}

// StartConfig is what a provider gets to create one resource instance.
type StartConfig struct {
	Workflow       core.ID
	Self           core.InstanceID
	Configurations map[string]string
	Host           Host
}

// Provider creates instances of one resource class.
type Provider interface {
	Spec() Spec
	Start(cfg StartConfig) (Instance, error)
}

// ConfigError reports a bad or missing configuration key of a resource.
type ConfigError struct {
	Class, Key, Msg string
}

// Error names the resource class, the key and what is wrong with it.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("resource %s: configuration %q: %s", e.Class, e.Key, e.Msg)
}

// Classes returns the class types of the given providers, sorted.
func Classes(ps map[string]Provider) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Spec().ClassType)
	}
	sort.Strings(out)
	return out
}
