// Package controller is the controller of a cluster: its HTTP API admits, lists,
// inspects and stops workflows, and it deploys each workflow on an
// orchestration domain that can run it, rolling back a partial start.
package controller
