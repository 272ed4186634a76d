package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edgeless-go/edgeless/core/spec"
)

// createFunction registers the standalone function name with the code in
// path (a .so is native) through POST /api/v1/functions; the controller
// answers once its instance runs.
func (c *controller) createFunction(ctx context.Context, name, path string) error {
	code, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read function code: %w", err)
	}
	rt := "wasm"
	if strings.HasSuffix(path, ".so") {
		rt = "native"
	}
	body, err := json.Marshal(&spec.FunctionCreate{Name: name, Runtime: rt, Code: code})
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/functions", body, nil); err != nil {
		return fmt.Errorf("cannot create function %q: %w", name, err)
	}
	return nil
}

func (c *controller) deleteFunction(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/functions/"+name, nil, nil)
}

// invoker sends synchronous invocations of one function, over keep-alive
// connections (one per concurrent caller).
type invoker struct {
	api
	url  string
	http *http.Client
	body []byte // nil: a GET
	host string // the Host header, when set
}

func newInvoker(a api, name string, conns int) *invoker {
	iv := newRequester(a, strings.TrimSuffix(a.url, "/")+"/api/v1/invoke/"+name, conns)
	iv.body = invokeBody
	return iv
}

// newServerledgeInvoker invokes name through Serverledge's API as
// serverledge-cli does: plain HTTP on the controller's port, without a
// token, which a client on loopback needs not (serverledge_auth).
func newServerledgeInvoker(a api, name string, conns int) *invoker {
	host := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSuffix(a.url, "/"), "https://"), "http://")
	iv := newRequester(api{}, "http://"+host+"/invoke/"+name, conns)
	iv.body = []byte(`{"Params":{}}`)
	return iv
}

// asyncRoundTrip makes one asynchronous invocation and polls for its
// result at once and again until it is done; it returns the polls made.
func (iv *invoker) asyncRoundTrip(ctx context.Context) (int, error) {
	var acc spec.InvokeAccepted
	if err := iv.send(ctx, http.MethodPost, iv.url, []byte(`{"params":{},"async":true}`), http.StatusAccepted, &acc); err != nil {
		return 0, err
	}
	poll := strings.TrimSuffix(iv.api.url, "/") + "/api/v1/poll/" + acc.RequestID
	for polls := 1; ; polls++ {
		var p spec.PollReply
		if err := iv.send(ctx, http.MethodGet, poll, nil, http.StatusOK, &p); err != nil {
			return polls, err
		}
		switch p.Status {
		case "done":
			return polls, nil
		case "error":
			return polls, fmt.Errorf("asynchronous invocation failed: %s", p.Error)
		}
	}
}

// send makes one API request and decodes its JSON answer into v.
func (iv *invoker) send(ctx context.Context, method, url string, body []byte, want int, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	iv.authorize(req)
	resp, err := iv.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s answered %s", method, url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// invokeBody is the body of a noop invocation.
var invokeBody = []byte(`{"params":{}}`)

// newIngressInvoker sends POST /hello for host to an http-ingress at addr
// (plain HTTP, as http-ingress serves), with an invocation's body: the
// requests the two paths are compared on cost the callers, which share the
// machine, the same.
func newIngressInvoker(addr, host string, conns int) *invoker {
	iv := newRequester(api{}, "http://"+addr+"/hello", conns)
	iv.host, iv.body = host, invokeBody
	return iv
}

func newRequester(a api, url string, conns int) *invoker {
	t := a.transport()
	t.MaxIdleConns, t.MaxIdleConnsPerHost, t.MaxConnsPerHost = conns, conns, conns
	t.IdleConnTimeout, t.DisableCompression = time.Minute, true
	return &invoker{api: a, url: url, http: &http.Client{Transport: t, Timeout: 30 * time.Second}}
}

func (iv *invoker) close() { iv.http.CloseIdleConnections() }

// invoke makes one synchronous invocation and reads the whole answer.
func (iv *invoker) invoke(ctx context.Context) error {
	method, body := http.MethodGet, io.Reader(nil)
	if iv.body != nil {
		method, body = http.MethodPost, bytes.NewReader(iv.body)
	}
	req, err := http.NewRequestWithContext(ctx, method, iv.url, body)
	if err != nil {
		return err
	}
	if iv.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if iv.host != "" {
		req.Host = iv.host
	}
	iv.authorize(req)
	resp, err := iv.http.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("invocation answered %s", resp.Status)
	}
	return err
}

// loadResult is what one load point measured.
type loadResult struct {
	lat      []time.Duration
	lag      []time.Duration // open loop: from the intended to the actual send
	svc      []time.Duration // open loop: from the actual send (what a closed loop would see)
	errs     int
	unsent   int // open loop: requests never sent before the drain deadline
	elapsed  time.Duration
	cpu      time.Duration // closed loop: the process's CPU time (user and system) while measuring
	firstErr error
}

func (r *loadResult) add(o *loadResult) {
	r.lat = append(r.lat, o.lat...)
	r.lag = append(r.lag, o.lag...)
	r.svc = append(r.svc, o.svc...)
	r.errs += o.errs
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
}

// closedLoop runs clients callers, each invoking again as soon as its answer
// arrives, for warm-up then d or until max invocations were measured; it
// returns the latencies measured after the warm-up.
func closedLoop(ctx context.Context, iv *invoker, clients int, warm, d time.Duration, max int) loadResult {
	start := time.Now()
	measure := start.Add(warm)
	end := measure.Add(d)
	per := max/clients + 1
	results := make([]loadResult, clients)
	// The CPU spent per invocation, server and callers alike, moves less
	// than the throughput with other work on the machine.
	cpu0 := make(chan time.Duration, 1)
	time.AfterFunc(warm, func() { cpu0 <- processCPU() })
	var wg sync.WaitGroup
	for k := range clients {
		wg.Go(func() {
			r := &results[k]
			r.lat = make([]time.Duration, 0, min(per, 1<<16))
			for len(r.lat) < per {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := iv.invoke(ctx)
				t1 := time.Now()
				if t0.Before(measure) {
					continue
				}
				if err != nil {
					r.errs++
					if r.firstErr == nil {
						r.firstErr = err
					}
					if ctx.Err() != nil {
						return
					}
					continue
				}
				r.lat = append(r.lat, t1.Sub(t0))
			}
		})
	}
	wg.Wait()
	var all loadResult
	if used := processCPU() - <-cpu0; used > 0 {
		all.cpu = used
	}
	for i := range results {
		all.add(&results[i])
	}
	all.elapsed = time.Since(measure)
	return all
}

// processCPU is the CPU time the process has used, all threads.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// openLoop sends invocations at a constant rate (per second) for d, from a
// pool of workers callers, and measures each invocation's latency from the
// time it was due to be sent, not from when a worker got to it: a stalled
// server delays every request queued behind it, and those delays are
// counted (no coordinated omission). Requests still queued drain after d
// for at most drain; those never sent by then are counted as unsent.
func openLoop(ctx context.Context, iv *invoker, workers int, rate float64, d, drain time.Duration) loadResult {
	n := int(rate * d.Seconds())
	due := make(chan time.Time, n)
	start := time.Now().Add(time.Millisecond)
	stopAt := start.Add(d + drain)
	results := make([]loadResult, workers)
	var wg sync.WaitGroup
	for k := range workers {
		wg.Go(func() {
			r := &results[k]
			for at := range due {
				sent := time.Now()
				if sent.After(stopAt) {
					r.unsent++
					continue
				}
				r.lag = append(r.lag, sent.Sub(at))
				err := iv.invoke(ctx)
				if err != nil {
					r.errs++
					if r.firstErr == nil {
						r.firstErr = err
					}
					continue
				}
				done := time.Now()
				r.lat = append(r.lat, done.Sub(at))
				r.svc = append(r.svc, done.Sub(sent))
			}
		})
	}
	// The dispatcher releases every request that is due, then sleeps
	// until the next one: a late wake-up releases a burst, as an open
	// system's arrivals would have queued during it.
	interval := float64(time.Second) / rate
	for i := 0; i < n && ctx.Err() == nil; {
		now := time.Now()
		for i < n {
			at := start.Add(time.Duration(float64(i) * interval))
			if at.After(now) {
				time.Sleep(at.Sub(now))
				break
			}
			due <- at
			i++
		}
	}
	close(due)
	wg.Wait()
	var all loadResult
	for i := range results {
		all.add(&results[i])
		all.unsent += results[i].unsent
	}
	all.elapsed = time.Since(start)
	return all
}
