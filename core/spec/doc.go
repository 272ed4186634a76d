// Package spec holds what users write down and hand to edgeless: the EDGELESS
// workflow JSON, the deployment requirements carried in its annotations, and
// the TOML configuration files of the modes.
//
// Workflows are parsed strictly: unknown fields, wrong types, duplicate keys
// and trailing data are errors, and every error is an *Error that names the
// file, the JSON path of the offending value (for example
// functions[1].class_specification.function_type) and, for problems found
// while reading the text, its line and column. Field names are those of
// EDGELESS, so workflow files can be brought across unchanged.
//
// Configurations are plain Go structs with `toml` and `comment` tags: the
// struct's default values and tags are the one source of the key names,
// defaults and comments, used both by LoadConfig and by WriteTemplate.
//
// Nothing here is on the event path; the package favours clear errors over
// speed and keeps no state between calls.
package spec
