// Package orc is the orchestrator of one domain: it keeps the registry of the
// domain's nodes (soft state refreshed by the nodes themselves), places the
// instances of logical functions and resources on them, keeps the output
// mappings patched, and re-creates what a failed node or instance took away.
package orc
