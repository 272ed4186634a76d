package resources

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

// ServerlessConfig configures one serverless provider: EDGELESS's
// [[resources.serverless_provider]] of node.toml.
type ServerlessConfig struct {
	ClassType   string // the resource class workflows name, e.g. "double"
	Version     string
	FunctionURL string // the OpenFaaS-style function, called with POST
	HTTP        HTTPClientConfig
}

// Serverless is a serverless provider: it offers a resource class, named in
// node.toml, whose every cast is POSTed to an external function (OpenFaaS
// style); a 200 reply's body is cast on `out`. Anything else is logged and,
// as text, cast on `err` (EDGELESS only logs it). A call is POSTed too and
// answered with the body, or Err.
type Serverless struct {
	cfg    ServerlessConfig
	url    string
	client *http.Client
}

// NewServerless checks cfg and returns the provider.
func NewServerless(cfg ServerlessConfig) (*Serverless, error) {
	cfg.HTTP.defaults()
	if cfg.ClassType == "" {
		return nil, fmt.Errorf("serverless provider: class_type is empty")
	}
	u, err := url.Parse(cfg.FunctionURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("serverless provider %s: function_url: want an http or https URL, got %q", cfg.ClassType, cfg.FunctionURL)
	}
	cfg.HTTP.Log = cfg.HTTP.Log.With("provider", cfg.ClassType)
	return &Serverless{cfg: cfg, url: u.String(), client: &http.Client{}}, nil
}

// Close releases idle connections.
func (p *Serverless) Close() error {
	p.client.CloseIdleConnections()
	return nil
}

// Spec implements Provider.
func (p *Serverless) Spec() Spec {
	return Spec{
		ClassType: p.cfg.ClassType,
		Version:   p.cfg.Version,
		Description: "POSTs every cast to the serverless function at " + p.url + " and casts the reply's body on out; " +
			"a failure is cast on err as text. A call replies with the body, or Err.",
		Outputs:        []string{"out", "err"},
		Configurations: map[string]string{},
	}
}

// Start implements Provider.
func (p *Serverless) Start(cfg StartConfig) (Instance, error) {
	return &serverlessInstance{p: p, out: cfg.Host, fail: core.Throttle{Every: 10 * time.Second}}, nil
}

type serverlessInstance struct {
	p    *Serverless
	out  Host
	fail core.Throttle
}

func (i *serverlessInstance) Cast(src core.InstanceID, payload []byte) error {
	body, err := i.post(payload)
	if err != nil {
		if ok, n := i.fail.Allow(); ok {
			i.p.cfg.HTTP.Log.Warn("serverless function failed", "url", i.p.url, "err", err, "failures", n)
		}
		i.out.Cast("err", []byte(err.Error()))
		return nil
	}
	i.out.Cast("out", body)
	return nil
}

func (i *serverlessInstance) Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	body, err := i.post(payload)
	if err != nil {
		if ok, n := i.fail.Allow(); ok {
			i.p.cfg.HTTP.Log.Warn("serverless function failed; replying Err", "url", i.p.url, "err", err, "failures", n)
		}
		return core.CallErr, nil, nil
	}
	return core.CallReply, body, nil
}

// post sends payload to the function and returns the body of a 200 reply.
func (i *serverlessInstance) post(payload []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), i.p.cfg.HTTP.CallTimeout*9/10)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.p.url, bytes.NewReader(payload))
	if err != nil {
		return nil, err
	}
	resp, err := i.p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, i.p.cfg.HTTP.MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the reply of %s: %w", i.p.url, err)
	}
	if int64(len(body)) > i.p.cfg.HTTP.MaxBodyBytes {
		return nil, fmt.Errorf("reply of %s larger than %d bytes", i.p.url, i.p.cfg.HTTP.MaxBodyBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s: %s", i.p.url, resp.Status, strconv.Quote(string(bytes.TrimSpace(body))))
	}
	return body, nil
}

func (i *serverlessInstance) Close() error { return nil }
