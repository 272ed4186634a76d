// Package node runs function instances and resource providers. A node
// registers with its orchestrator, creates, patches and stops instances on its
// orders, and moves events between instances: same-node events go straight to
// the target's mailbox, others over the dataplane to the peer that hosts the
// target.
package node
