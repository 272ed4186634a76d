package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core/inabox"
	"github.com/edgeless-go/edgeless/core/spec"
)

// api says how to reach a controller's HTTP API: its URL, the token sent
// and, for https, the CA that signed its certificate (nil: the system's).
type api struct {
	url   string
	token string
	ca    *x509.CertPool
}

// boxAPI is the API of a cluster in this process.
func boxAPI(b *inabox.Inabox) api {
	a := api{url: b.ControllerURL(), token: b.AdminToken()}
	if ca := b.CA(); ca != nil {
		a.ca = x509.NewCertPool()
		a.ca.AppendCertsFromPEM(ca.PEM)
	}
	return a
}

// transport returns an HTTP transport for a.
func (a api) transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if a.ca != nil {
		t.TLSClientConfig = &tls.Config{RootCAs: a.ca, MinVersion: tls.VersionTLS12}
	}
	return t
}

// authorize adds a's token to req.
func (a api) authorize(req *http.Request) {
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
}

// controller is a client of the controller's HTTP API.
type controller struct {
	api
	base string
	http *http.Client
}

func newController(a api) *controller {
	return &controller{api: a, base: strings.TrimSuffix(a.url, "/"), http: &http.Client{Timeout: time.Minute, Transport: a.transport()}}
}

func (c *controller) do(ctx context.Context, method, path string, body []byte, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.authorize(req)
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

// list returns the controller's workflow list and the size of its reply.
func (c *controller) list(ctx context.Context) (spec.WorkflowList, int, error) {
	var raw json.RawMessage
	var l spec.WorkflowList
	if err := c.do(ctx, http.MethodGet, "/api/v1/workflows", nil, &raw); err != nil {
		return l, 0, err
	}
	return l, len(raw), json.Unmarshal(raw, &l)
}
