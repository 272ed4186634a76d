package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
)

// controller is a client of the controller's HTTP API.
type controller struct {
	base string
	http *http.Client
}

func newController(url string) *controller {
	return &controller{base: strings.TrimSuffix(url, "/"), http: &http.Client{Timeout: time.Minute}}
}

func (c *controller) do(ctx context.Context, method, path string, body []byte, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the controller at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("cannot read the controller's reply: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e spec.ErrorReply
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("controller answered %s", resp.Status)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(data, v)
}

// start starts a workflow and returns its id.
func (c *controller) start(ctx context.Context, w *spec.Workflow) (string, error) {
	body, err := json.Marshal(w)
	if err != nil {
		return "", err
	}
	var reply spec.StartReply
	if err := c.do(ctx, http.MethodPost, "/api/v1/workflows", body, &reply); err != nil {
		return "", err
	}
	return reply.WorkflowID, nil
}

func (c *controller) stop(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/workflows/"+id, nil, nil)
}

func (c *controller) inspect(ctx context.Context, id string) (spec.WorkflowInfo, error) {
	var wi spec.WorkflowInfo
	err := c.do(ctx, http.MethodGet, "/api/v1/workflows/"+id, nil, &wi)
	return wi, err
}
