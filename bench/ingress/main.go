// Command ingress measures http-ingress → WASM function → reply against a
// plain net/http handler doing the same work, in one run on this machine.
//
// It starts edgeless in a box on loopback (random ports), deploys
// examples/http_ingress (http-ingress calling the http_processor function,
// which answers "World" to /hello), starts a net/http server whose handler
// reads the body and answers "World" to /hello, and drives both with the same
// closed-loop load: -c concurrent keep-alive connections, each sending its
// next request when the previous answer arrives, for -d or -n requests,
// whichever comes first. Every answer is checked. It prints requests/s,
// p50/p99 latency and the ratio of the two.
//
// With -wrk, the load comes from wrk (Debian's package) in a process of its
// own instead: -c connections over two threads for -d, so that the load
// generator does not share this process's scheduler and garbage collector
// with the servers. wrk counts responses other than 2xx and 3xx, which fail
// the run; it does not check the bodies.
//
//	go run ./bench/ingress [-c 64] [-d 5s] [-n 500000] [-rounds 2] [-wrk] [-cpuprofile FILE]
//
// Run it from the repository root after `make functions`. Only loopback
// addresses are ever used.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeless-go/edgeless/core/inabox"
	"github.com/edgeless-go/edgeless/core/spec"
)

func main() {
	conc := flag.Int("c", 64, "concurrent connections (1..1024)")
	dur := flag.Duration("d", 5*time.Second, "duration of one measurement (at most 60s)")
	maxReq := flag.Int("n", 500_000, "requests of one measurement at most (at most 5,000,000)")
	rounds := flag.Int("rounds", 2, "measurements of each target, alternated (1..10)")
	warm := flag.Duration("warmup", time.Second, "load before measuring each target")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (server and load) to this file")
	useWrk := flag.Bool("wrk", false, "generate the load with wrk, in its own process (-n is then ignored)")
	flag.Parse()
	if *conc < 1 || *conc > 1024 || *dur <= 0 || *dur > time.Minute || *maxReq < 1 || *maxReq > 5_000_000 ||
		*rounds < 1 || *rounds > 10 || *warm < 0 || *warm > 10*time.Second {
		fmt.Fprintln(os.Stderr, "ingress: a flag is out of bounds (see -h)")
		os.Exit(2)
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ingress:", err)
			os.Exit(1)
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	load := target.load
	if *useWrk {
		if _, err := exec.LookPath("wrk"); err != nil {
			fmt.Fprintln(os.Stderr, "ingress: -wrk needs wrk (apt-get install wrk):", err)
			os.Exit(1)
		}
		load = target.wrk
	}
	if err := run(*conc, *dur, *maxReq, *rounds, *warm, load); err != nil {
		fmt.Fprintln(os.Stderr, "ingress:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// loadFunc measures a target with conc connections for d or maxReq requests.
type loadFunc func(t target, conc int, d time.Duration, maxReq int) (result, error)

func run(conc int, dur time.Duration, maxReq, rounds int, warm time.Duration, load loadFunc) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "edgeless-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// A load generator on loopback: the API (only used to start the
	// workflow) is plain HTTP without tokens; the parts still use mTLS.
	cfg := inabox.Default()
	cfg.CredentialsDir = ""
	cfg.Controller.TokensPath = ""
	cfg.Ephemeral(false)
	cfg.Node.General.MailboxSize = 4096
	cfg.Node.WASM.CacheDir = filepath.Join(dir, "cache")
	cfg.Node.State.Dir = filepath.Join(dir, "state")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := inabox.New(cfg, log)
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer b.Close()
	if err := startWorkflow(b.ControllerURL(), "examples/http_ingress/workflow.json"); err != nil {
		return fmt.Errorf("cannot start examples/http_ingress (run from the repository root after make functions): %w", err)
	}
	ingress := target{name: "http-ingress → WASM", addr: b.Nodes[0].HTTPIngressAddr(), host: "demo.edgeless.com"}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(plain)}
	go srv.Serve(ln)
	defer srv.Close()
	direct := target{name: "plain net/http", addr: ln.Addr().String(), host: "demo.edgeless.com"}

	for _, t := range []target{ingress, direct} {
		if err := t.ready(10 * time.Second); err != nil {
			return err
		}
	}
	fmt.Printf("GOMAXPROCS %d; %d connections; %v or %d requests per measurement\n\n",
		runtime.GOMAXPROCS(0), conc, dur, maxReq)
	results := map[string][]result{}
	for r := range rounds {
		for _, t := range []target{ingress, direct} {
			if warm > 0 {
				if _, err := load(t, conc, warm, maxReq); err != nil {
					return err
				}
			}
			res, err := load(t, conc, dur, maxReq)
			if err != nil {
				return err
			}
			results[t.name] = append(results[t.name], res)
			fmt.Printf("round %d  %-22s %9.0f req/s  p50 %8v  p99 %8v  (%d requests)\n",
				r+1, t.name, res.rps, res.p50, res.p99, res.n)
		}
	}
	best := func(name string) result {
		rs := results[name]
		return slices.MaxFunc(rs, func(a, b result) int { return cmp.Compare(a.rps, b.rps) })
	}
	bi, bd := best(ingress.name), best(direct.name)
	fmt.Printf("\nbest of %d: http-ingress → WASM %.0f req/s (p50 %v, p99 %v); plain net/http %.0f req/s (p50 %v, p99 %v)\n",
		rounds, bi.rps, bi.p50, bi.p99, bd.rps, bd.p50, bd.p99)
	fmt.Printf("ratio http-ingress/plain: throughput %.2f, p50 latency %.2fx\n", bi.rps/bd.rps, float64(bi.p50)/float64(bd.p50))
	return nil
}

// startWorkflow starts a workflow file through the controller's API.
func startWorkflow(controller, file string) error {
	w, err := spec.LoadWorkflow(file)
	if err != nil {
		return err
	}
	body, err := json.Marshal(w)
	if err != nil {
		return err
	}
	resp, err := http.Post(controller+"/api/v1/workflows", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("controller answered %s: %s", resp.Status, msg)
	}
	return nil
}

// plain is the baseline: the same work as http_processor's /hello, without
// the platform.
func plain(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if r.URL.Path != "/hello" {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("World"))
}

type target struct {
	name, addr, host string
}

type result struct {
	n        int
	rps      float64
	p50, p99 time.Duration
}

func (t target) request() (*http.Request, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+t.addr+"/hello", nil)
	if err == nil {
		req.Host = t.host
	}
	return req, err
}

// ready polls until the target answers World.
func (t target) ready(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		req, err := t.request()
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && string(body) == "World" {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s at %s does not answer World", t.name, t.addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// load runs conc closed-loop clients for d or maxReq requests in all.
func (t target) load(conc int, d time.Duration, maxReq int) (result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var issued atomic.Int64
	var failed atomic.Value
	lat := make([][]time.Duration, conc)
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, min(maxReq/conc+1, 1<<20))
			for time.Now().Before(stop) && issued.Add(1) <= int64(maxReq) {
				req, _ := t.request()
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				var buf [16]byte
				n, _ := io.ReadFull(resp.Body, buf[:])
				resp.Body.Close()
				if resp.StatusCode != 200 || string(buf[:n]) != "World" {
					failed.CompareAndSwap(nil, fmt.Errorf("%s answered %d %q", t.name, resp.StatusCode, buf[:n]))
					return
				}
				mine = append(mine, time.Since(t0))
			}
			lat[w] = mine
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		return result{}, err
	}
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return result{}, errors.New("no request completed")
	}
	slices.Sort(all)
	return result{
		n:   len(all),
		rps: float64(len(all)) / elapsed.Seconds(),
		p50: all[len(all)/2].Round(time.Microsecond),
		p99: all[len(all)*99/100].Round(time.Microsecond),
	}, nil
}

// wrk measures t with wrk in its own process: conc connections over two
// threads (one per core here) for d, at least one second.
func (t target) wrk(conc int, d time.Duration, _ int) (result, error) {
	secs := strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second)))
	cmd := exec.Command("wrk", "-t", strconv.Itoa(min(2, conc)), "-c", strconv.Itoa(conc), "-d", secs+"s", "--latency",
		"-H", "Host: "+t.host, "http://"+t.addr+"/hello")
	out, err := cmd.Output()
	if err != nil {
		return result{}, fmt.Errorf("wrk against %s: %w", t.name, err)
	}
	return parseWrk(t.name, string(out))
}

// parseWrk reads wrk's report: requests, requests/s and the latency
// distribution that --latency prints.
func parseWrk(name, out string) (result, error) {
	var res result
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "Requests/sec:":
			res.rps, _ = strconv.ParseFloat(f[1], 64)
		case len(f) >= 4 && f[1] == "requests" && f[2] == "in":
			res.n, _ = strconv.Atoi(f[0])
		case len(f) == 2 && f[0] == "50%":
			res.p50, _ = time.ParseDuration(f[1])
		case len(f) == 2 && f[0] == "99%":
			res.p99, _ = time.ParseDuration(f[1])
		case strings.HasPrefix(strings.TrimSpace(line), "Non-2xx or 3xx responses:"):
			return result{}, fmt.Errorf("wrk against %s: %s", name, strings.TrimSpace(line))
		}
	}
	if res.n == 0 || res.rps == 0 {
		return result{}, fmt.Errorf("wrk against %s: no requests in its report:\n%s", name, out)
	}
	return res, nil
}
