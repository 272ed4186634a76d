package resources

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core"
)

// HTTPClientConfig configures the http-egress and http-poster providers.
type HTTPClientConfig struct {
	// MaxBodyBytes bounds a response body read by http-egress; a larger
	// response fails the call.
	MaxBodyBytes int64
	// CallTimeout is how long the node lets a call wait for its reply; a
	// request's default timeout is a little shorter, so that the caller
	// gets Err rather than a timeout of its own.
	CallTimeout time.Duration
	Log         *slog.Logger
}

func (c *HTTPClientConfig) defaults() {
	if c.MaxBodyBytes < 1 {
		c.MaxBodyBytes = 4 << 20
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 5 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// HTTPEgress is the http-egress provider: a call with an EdgelessHTTPRequest
// makes the HTTP request and replies with the EdgelessHTTPResponse; a failed
// request (refused, timed out, malformed) replies Err. Casts are ignored.
type HTTPEgress struct {
	cfg    HTTPClientConfig
	log    *slog.Logger
	client *http.Client
}

// NewHTTPEgress returns an http-egress provider with its own connection pool.
func NewHTTPEgress(cfg HTTPClientConfig) *HTTPEgress {
	cfg.defaults()
	return &HTTPEgress{cfg: cfg, log: cfg.Log.With("provider", "http-egress"), client: &http.Client{}}
}

// Close releases idle connections.
func (p *HTTPEgress) Close() error {
	p.client.CloseIdleConnections()
	return nil
}

// Spec implements Provider.
func (p *HTTPEgress) Spec() Spec {
	return Spec{
		ClassType:   "http-egress",
		Version:     "1.1",
		Description: "A call with a JSON EdgelessHTTPRequest performs the request (URL protocol://host+path) and replies with the JSON EdgelessHTTPResponse; failures reply Err; casts are ignored.",
		Outputs:     []string{},
		Configurations: map[string]string{
			"timeout_ms": "time limit of one request (default: 90% of the node's call timeout)",
		},
	}
}

// Start implements Provider.
func (p *HTTPEgress) Start(cfg StartConfig) (Instance, error) {
	timeout, err := timeoutConf("http-egress", cfg.Configurations, p.cfg.CallTimeout*9/10)
	if err != nil {
		return nil, err
	}
	return &egressInstance{p: p, timeout: timeout, fail: core.Throttle{Every: 10 * time.Second}}, nil
}

func timeoutConf(class string, c map[string]string, def time.Duration) (time.Duration, error) {
	s := c["timeout_ms"]
	if s == "" {
		return def, nil
	}
	ms, err := strconv.Atoi(s)
	if err != nil || ms < 1 {
		return 0, &ConfigError{Class: class, Key: "timeout_ms", Msg: "want a positive integer, got " + strconv.Quote(s)}
	}
	return time.Duration(ms) * time.Millisecond, nil
}

type egressInstance struct {
	p       *HTTPEgress
	timeout time.Duration
	fail    core.Throttle
	out     []byte
}

func (i *egressInstance) Cast(core.InstanceID, []byte) error { return nil }

func (i *egressInstance) Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	resp, err := i.do(payload)
	if err != nil {
		if ok, n := i.fail.Allow(); ok {
			i.p.log.Warn("http-egress request failed; replying Err", "from", src.String(), "err", err, "failures", n)
		}
		return core.CallErr, nil, nil
	}
	i.out = resp.AppendJSON(i.out[:0])
	return core.CallReply, i.out, nil
}

func (i *egressInstance) do(payload []byte) (*HTTPResponse, error) {
	var req HTTPRequest
	if err := ParseHTTPRequest(payload, &req); err != nil {
		return nil, fmt.Errorf("cannot decode EdgelessHTTPRequest: %w", err)
	}
	scheme := "http"
	if strings.EqualFold(req.Protocol, "HTTPS") {
		scheme = "https"
	}
	u := scheme + "://" + req.Host + req.Path
	if _, err := url.Parse(u); err != nil {
		return nil, fmt.Errorf("cannot request %q: %w", u, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), i.timeout)
	defer cancel()
	var body io.Reader
	if req.Body != nil {
		body = bytes.NewReader(req.Body)
	}
	hr, err := http.NewRequestWithContext(ctx, httpMethod(req.Method), u, body)
	if err != nil {
		return nil, fmt.Errorf("cannot request %q: %w", u, err)
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, "host") {
			hr.Host = v
			continue
		}
		hr.Header.Set(k, v)
	}
	r, err := i.p.client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	data, err := readBody(nil, r.Body, i.p.cfg.MaxBodyBytes)
	if err != nil {
		return nil, fmt.Errorf("cannot read the response of %s %s: %w", hr.Method, u, err)
	}
	resp := &HTTPResponse{Body: data, Status: r.StatusCode, Headers: make(map[string]string, len(r.Header))}
	for k, vs := range r.Header {
		resp.Headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	return resp, nil
}

func (i *egressInstance) Close() error { return nil }

// HTTPPoster is the http-poster provider: every cast is POSTed to the
// instance's url. A call is POSTed too and replies an empty payload, or Err
// when the POST fails.
type HTTPPoster struct {
	cfg    HTTPClientConfig
	log    *slog.Logger
	client *http.Client
}

// NewHTTPPoster returns an http-poster provider with its own connection pool.
func NewHTTPPoster(cfg HTTPClientConfig) *HTTPPoster {
	cfg.defaults()
	return &HTTPPoster{cfg: cfg, log: cfg.Log.With("provider", "http-poster"), client: &http.Client{}}
}

// Close releases idle connections.
func (p *HTTPPoster) Close() error {
	p.client.CloseIdleConnections()
	return nil
}

// Spec implements Provider.
func (p *HTTPPoster) Spec() Spec {
	return Spec{
		ClassType:   "http-poster",
		Version:     "1.0",
		Description: "POSTs the payload of every cast to a web server; failures are logged and counted.",
		Outputs:     []string{},
		Configurations: map[string]string{
			"url":           "URL of the web server (required)",
			"decode_base64": "true: the payload is base64 and the decoded bytes are posted",
			"timeout_ms":    "time limit of one POST (default: 90% of the node's call timeout)",
		},
	}
}

// Start implements Provider.
func (p *HTTPPoster) Start(cfg StartConfig) (Instance, error) {
	c := cfg.Configurations
	u, err := url.Parse(c["url"])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &ConfigError{Class: "http-poster", Key: "url", Msg: "want an http or https URL, got " + strconv.Quote(c["url"])}
	}
	timeout, err := timeoutConf("http-poster", c, p.cfg.CallTimeout*9/10)
	if err != nil {
		return nil, err
	}
	return &posterInstance{
		p: p, url: u.String(), decode: isTrue(c["decode_base64"]), timeout: timeout,
		fail: core.Throttle{Every: 10 * time.Second},
	}, nil
}

type posterInstance struct {
	p       *HTTPPoster
	url     string
	decode  bool
	timeout time.Duration
	fail    core.Throttle
	buf     []byte
}

func (i *posterInstance) Cast(src core.InstanceID, payload []byte) error {
	if err := i.post(payload); err != nil {
		if ok, n := i.fail.Allow(); ok {
			i.p.log.Warn("http-poster cannot post; payload dropped", "url", i.url, "err", err, "failures", n)
		}
	}
	return nil
}

func (i *posterInstance) Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	if err := i.post(payload); err != nil {
		if ok, n := i.fail.Allow(); ok {
			i.p.log.Warn("http-poster cannot post; replying Err", "url", i.url, "err", err, "failures", n)
		}
		return core.CallErr, nil, nil
	}
	return core.CallReply, nil, nil
}

func (i *posterInstance) post(payload []byte) error {
	if i.decode {
		var err error
		if i.buf, err = base64.StdEncoding.AppendDecode(i.buf[:0], payload); err != nil {
			return fmt.Errorf("cannot decode base64 payload: %w", err)
		}
		payload = i.buf
	}
	ctx, cancel := context.WithTimeout(context.Background(), i.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.url, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	resp, err := i.p.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16)) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s", i.url, resp.Status)
	}
	return nil
}

func (i *posterInstance) Close() error { return nil }

var errTooLarge = errors.New("body too large")

// readBody appends the body to dst, failing with errTooLarge past max bytes.
func readBody(dst []byte, body io.Reader, max int64) ([]byte, error) {
	for {
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, int(min(max+1-int64(len(dst)), int64(cap(dst))+512)))
		}
		n, err := body.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if int64(len(dst)) > max {
			return dst, errTooLarge
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}
