// Package proxyschema is the schema of the Redis mirror that an
// orchestrator's proxy writes and `edgeless proxy` reads: EDGELESS's key
// names and JSON values, so that EDGELESS's proxy_cli, dashboards and
// delegated orchestrators work unchanged against it.
//
//	domain_info:domain_id            the domain's name
//	node:capabilities:<node>         Capabilities
//	node:health:<node>               sorted set of Health, scored by arrival time
//	provider:<provider id>           Provider
//	instance:<logical id>            Instance
//	dependency:<logical id>          Dependencies
//	<category>:last_update           when the category last changed, Unix seconds with a fraction
//	performance:<physical id>:<metric or log target>  sorted sets of Member "<ts>:<value>"
//
// Outside tools push intents on the list "intents": the key of a string
// intent:migrate:<logical id> = "<node>[,<node>…]" or intent:cordon:<node>
// = "yes"|"no" (Intent).
//
// Both the writer and the reader use these key builders and records, so the
// two sides cannot drift apart.
package proxyschema

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/edgeless-go/edgeless/core"
)

// Key names and prefixes.
const (
	DomainID = "domain_info:domain_id"
	Intents  = "intents"

	CapabilitiesPrefix = "node:capabilities:"
	HealthPrefix       = "node:health:"
	ProviderPrefix     = "provider:"
	InstancePrefix     = "instance:"
	DependencyPrefix   = "dependency:"
	PerformancePrefix  = "performance:"
)

// The categories of string keys, each with its last_update key.
const (
	CategoryCapabilities = "node:capabilities"
	CategoryProvider     = "provider"
	CategoryInstance     = "instance"
	CategoryDependency   = "dependency"
)

// Categories lists the categories in the order the proxy writes them.
var Categories = [...]string{CategoryCapabilities, CategoryProvider, CategoryInstance, CategoryDependency}

// lastUpdate is the suffix of a category's last_update key, which a scan of
// the category's prefix also finds.
const lastUpdate = "last_update"

// LastUpdateKey returns the key that stamps a category's last change.
func LastUpdateKey(category string) string { return category + ":" + lastUpdate }

// IsLastUpdate tells whether id, a key with its category's prefix removed,
// is the category's last_update stamp rather than a record.
func IsLastUpdate(id string) bool { return id == lastUpdate }

// CapabilitiesKey returns the key of a node's capabilities.
func CapabilitiesKey(node core.ID) string { return CapabilitiesPrefix + node.String() }

// HealthKey returns the key of a node's health history.
func HealthKey(node core.ID) string { return HealthPrefix + node.String() }

// ProviderKey returns the key of a resource provider.
func ProviderKey(id string) string { return ProviderPrefix + id }

// InstanceKey returns the key of a logical component's instances.
func InstanceKey(logical core.ID) string { return InstancePrefix + logical.String() }

// DependencyKey returns the key of a logical component's output mapping.
func DependencyKey(logical core.ID) string { return DependencyPrefix + logical.String() }

// PerformanceKey returns the key of a physical instance's series: a metric
// (function_execution_time, …) or a telemetry_log target.
func PerformanceKey(physical core.ID, series string) string {
	return PerformancePrefix + physical.String() + ":" + series
}

// ParsePerformanceKey splits a performance key into its physical id and
// series; ok is false for any other key.
func ParsePerformanceKey(key string) (physical core.ID, series string, ok bool) {
	rest, ok := strings.CutPrefix(key, PerformancePrefix)
	if !ok {
		return core.ID{}, "", false
	}
	id, series, ok := strings.Cut(rest, ":")
	if !ok {
		return core.ID{}, "", false
	}
	physical, err := core.ParseID(id)
	return physical, series, err == nil
}

// FormatSeconds formats a time or duration in seconds as EDGELESS does: the
// shortest decimal that reads back the same.
func FormatSeconds(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) }

// Member returns a performance sorted-set member: "<ts>:<value>", value
// being a number of seconds or a log message.
func Member(ts float64, value string) string { return FormatSeconds(ts) + ":" + value }

// SplitMember splits a performance member into its timestamp and value, as
// written; ok is false when it has no separator.
func SplitMember(m string) (ts, value string, ok bool) { return strings.Cut(m, ":") }

// encode encodes v as JSON without HTML escaping, as serde_json does.
func encode(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("BUG: cannot encode a proxy value: " + err.Error())
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func decode(what, s string, v any) error {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("cannot decode %s %q: %w", what, s, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// FormatInstanceID formats an instance as EDGELESS's InstanceId Display.
func FormatInstanceID(i core.InstanceID) string {
	return "InstanceId(node_id: " + i.Node.String() + ", function_id: " + i.Component.String() + ")"
}

// ParseInstanceID reads "InstanceId(node_id: N, function_id: F)", also
// wrapped as "(InstanceId(…), true)" by newer EDGELESS versions.
func ParseInstanceID(s string) (core.InstanceID, error) {
	field := func(name string) (core.ID, error) {
		_, after, ok := strings.Cut(s, name+": ")
		if !ok || len(after) < 36 {
			return core.ID{}, fmt.Errorf("instance id %q has no %s", s, name)
		}
		return core.ParseID(after[:36])
	}
	node, err := field("node_id")
	if err != nil {
		return core.InstanceID{}, err
	}
	fid, err := field("function_id")
	if err != nil {
		return core.InstanceID{}, err
	}
	return core.InstanceID{Node: node, Component: fid}, nil
}

// Dependencies is a dependency value: output channel → logical id.
type Dependencies map[string]core.ID

// Encode returns the JSON value of d.
func (d Dependencies) Encode() string {
	m := make(map[string]string, len(d))
	for ch, id := range d {
		m[ch] = id.String()
	}
	return encode(m)
}

// DecodeDependencies reads a dependency value.
func DecodeDependencies(s string) (Dependencies, error) {
	var m map[string]string
	if err := decode("dependencies", s, &m); err != nil {
		return nil, err
	}
	d := make(Dependencies, len(m))
	for ch, v := range m {
		id, err := core.ParseID(v)
		if err != nil {
			return nil, fmt.Errorf("cannot decode dependencies: channel %q: %w", ch, err)
		}
		d[ch] = id
	}
	return d, nil
}

// IntentKind is what an intent asks for.
type IntentKind string

// The intents an orchestrator obeys.
const (
	IntentMigrate IntentKind = "migrate"
	IntentCordon  IntentKind = "cordon"
)

// Intent is one intent: migrate Logical to the first feasible of Targets,
// or (un)cordon Node.
type Intent struct {
	Kind     IntentKind
	Logical  core.ID   // migrate
	Targets  []core.ID // migrate
	Node     core.ID   // cordon
	Cordoned bool      // cordon
}

// Key returns the key the intent's value is stored under, which is also
// what is pushed on the list Intents.
func (i Intent) Key() string {
	if i.Kind == IntentCordon {
		return "intent:cordon:" + i.Node.String()
	}
	return "intent:" + string(i.Kind) + ":" + i.Logical.String()
}

// Value returns the intent's string value.
func (i Intent) Value() string {
	if i.Kind == IntentCordon {
		if i.Cordoned {
			return "yes"
		}
		return "no"
	}
	ids := make([]string, len(i.Targets))
	for n, t := range i.Targets {
		ids[n] = t.String()
	}
	return strings.Join(ids, ",")
}

// ParseIntent reads an intent from its key and value. Cordon values accept
// "true" and "false" too, and migration targets may be spaced.
func ParseIntent(key, value string) (Intent, error) {
	rest, ok := strings.CutPrefix(key, "intent:")
	if !ok {
		return Intent{}, errors.New(`the key does not start with "intent:"`)
	}
	kind, arg, _ := strings.Cut(rest, ":")
	switch IntentKind(kind) {
	case IntentMigrate:
		lid, err := core.ParseID(arg)
		if err != nil {
			return Intent{}, fmt.Errorf("bad component: %w", err)
		}
		in := Intent{Kind: IntentMigrate, Logical: lid}
		for s := range strings.SplitSeq(value, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			id, err := core.ParseID(s)
			if err != nil {
				return Intent{}, fmt.Errorf("bad target node: %w", err)
			}
			in.Targets = append(in.Targets, id)
		}
		return in, nil
	case IntentCordon:
		id, err := core.ParseID(arg)
		if err != nil {
			return Intent{}, fmt.Errorf("bad node: %w", err)
		}
		in := Intent{Kind: IntentCordon, Node: id}
		switch strings.ToLower(strings.TrimSpace(value)) {
		case "yes", "true":
			in.Cordoned = true
		case "no", "false":
		default:
			return Intent{}, fmt.Errorf(`cordon value must be "yes" or "no", got %q`, value)
		}
		return in, nil
	}
	return Intent{}, fmt.Errorf("unknown intent %q", kind)
}
