package spec

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// Warning is a configuration key that was read but has no effect.
type Warning struct {
	File string // the configuration file
	Key  string // dotted TOML key, or the table that holds it
	Msg  string // why it has no effect
}

// String renders the warning as "file: key: msg".
func (w Warning) String() string { return w.File + ": " + w.Key + ": " + w.Msg }

// LoadOptions tunes LoadConfigWith.
type LoadOptions struct {
	// Strict refuses keys that match no field and are not in Ignored;
	// otherwise they are returned as warnings, as EDGELESS ignores them.
	Strict bool
	// Ignored lists the keys accepted so that EDGELESS's files load
	// unchanged although they have no effect here: a dotted key, or a table
	// that covers every key inside it, mapped to the reason shown to the
	// user.
	Ignored map[string]string
}

// LoadConfigWith is LoadConfig that accepts the keys of opts.Ignored, and
// unknown keys unless opts.Strict. It returns one Warning per ignored key or
// table, except where the value turns the feature off ("", false, 0, [], or a
// table whose `provider` or `enabled` is so): EDGELESS's own templates write
// such keys, and they do nothing there either.
func LoadConfigWith(path string, cfg any, opts LoadOptions) ([]Warning, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read config %s: %w", path, err)
	}
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: path, Path: pe.LastKey, Line: pe.Position.Line, Col: pe.Position.Col, Msg: pe.Message, Err: err}
		}
		return nil, &Error{File: path, Msg: strings.TrimPrefix(err.Error(), "toml: "), Err: err}
	}
	undecoded := md.Undecoded()
	if len(undecoded) == 0 {
		return nil, nil
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, &Error{File: path, Msg: err.Error(), Err: err}
	}
	var (
		errs     []error
		warns    []Warning
		reported []toml.Key
	)
	for _, k := range undecoded {
		// Report a table once rather than once per key inside it.
		if slices.ContainsFunc(reported, func(r toml.Key) bool { return hasPrefix(k, r) || slices.Equal(k, r) }) {
			continue
		}
		if isTableOfIgnored(opts.Ignored, k, undecoded) {
			continue
		}
		if entry, why, ok := ignoredEntry(opts.Ignored, k); ok {
			reported = append(reported, entry)
			if !isOff(lookup(raw, entry)) {
				warns = append(warns, Warning{File: path, Key: entry.String(), Msg: why})
			}
			continue
		}
		reported = append(reported, k)
		if opts.Strict {
			errs = append(errs, &Error{File: path, Path: k.String(), Msg: "unknown key"})
			continue
		}
		warns = append(warns, Warning{File: path, Key: k.String(), Msg: "unknown key, ignored"})
	}
	return warns, errors.Join(errs...)
}

// ignoredEntry returns the entry of ignored that is k or a table holding k,
// the longest one when several are.
func ignoredEntry(ignored map[string]string, k toml.Key) (toml.Key, string, bool) {
	for n := len(k); n > 0; n-- {
		if why, ok := ignored[strings.Join(k[:n], ".")]; ok {
			return k[:n], why, true
		}
	}
	return nil, "", false
}

// isTableOfIgnored reports whether k is a table that is not itself ignored
// but all of whose undecoded keys are: it is reported through them.
func isTableOfIgnored(ignored map[string]string, k toml.Key, undecoded []toml.Key) bool {
	if _, _, ok := ignoredEntry(ignored, k); ok {
		return false
	}
	inner := false
	for _, d := range undecoded {
		if !hasPrefix(d, k) {
			continue
		}
		if _, _, ok := ignoredEntry(ignored, d); !ok {
			return false
		}
		inner = true
	}
	return inner
}

// lookup returns the value at key in a document decoded into a map.
func lookup(doc map[string]any, key toml.Key) any {
	var v any = doc
	for _, part := range key {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// isOff reports whether v leaves a feature off: a zero value, an empty
// list, or a table turned off by its `provider` or `enabled` key (or every
// key of it off).
func isOff(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case bool:
		return !v
	case int64:
		return v == 0
	case float64:
		return v == 0
	case []map[string]any:
		for _, t := range v {
			if !isOff(t) {
				return false
			}
		}
		return true
	case []any:
		for _, e := range v {
			if !isOff(e) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, sw := range []string{"provider", "enabled"} {
			if s, ok := v[sw]; ok {
				return isOff(s)
			}
		}
		for _, e := range v {
			if !isOff(e) {
				return false
			}
		}
		return true
	}
	return false
}

// LoadValidatedWith is LoadValidated with options; it returns the warnings of
// LoadConfigWith sorted by key.
func LoadValidatedWith[C any, P interface {
	*C
	Validate() error
}](path string, cfg C, opts LoadOptions) (C, []Warning, error) {
	warns, err := LoadConfigWith(path, &cfg, opts)
	if err != nil {
		return cfg, warns, err
	}
	sort.Slice(warns, func(i, j int) bool { return warns[i].Key < warns[j].Key })
	if err := P(&cfg).Validate(); err != nil {
		return cfg, warns, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, warns, nil
}
