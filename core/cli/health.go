package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Health runs `edgeless health [URL]`: it succeeds when URL (by default the
// /metrics of any mode on its default port) answers 200 within 2 s. It is the
// container image's health check, which has no shell or curl.
func Health(args []string, out io.Writer) error {
	// The /metrics of the modes' defaults: controller, orchestrator, node.
	urls := []string{"http://127.0.0.1:7011/metrics", "http://127.0.0.1:7012/metrics", "http://127.0.0.1:7007/metrics"}
	if len(args) > 0 {
		urls = args
	}
	c := &http.Client{Timeout: 2 * time.Second}
	var errs []error
	for _, u := range urls {
		resp, err := c.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Fprintln(out, "healthy:", u)
				return nil
			}
			err = errors.New(resp.Status)
		}
		errs = append(errs, fmt.Errorf("%s: %w", u, err))
	}
	return fmt.Errorf("unhealthy: %w", errors.Join(errs...))
}
