package node

import (
	"context"

	"github.com/edgeless-go/edgeless/resources"
)

// startProviders creates the resource providers the configuration names.
func (n *Node) startProviders(ctx context.Context) error {
	if id := n.cfg.Resources.FileLogProvider; id != "" {
		n.provs[id] = resources.FileLog{}
	}
	return nil
}

// closeProviders releases what providers hold (listeners, connections).
func (n *Node) closeProviders() {}
