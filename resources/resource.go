package resources

import (
	"fmt"
	"sort"

	"github.com/edgeless-go/edgeless/core"
)

// Host is what a resource instance needs from its node. It is safe to call
// from any goroutine; payload is copied before Cast returns.
type Host interface {
	Cast(output string, payload []byte)
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
