// Package resources holds the resource providers a node offers: components of a
// workflow that touch the outside world (files, HTTP, Redis, …).
//
// A provider creates resource instances from a workflow's configurations; the
// node runs each instance like a function instance (one event at a time, a
// bounded mailbox) and hands it a Host to emit events on its outputs.
package resources
