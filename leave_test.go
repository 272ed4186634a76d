package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// term stops a process with SIGTERM, as an operator would, and returns how
// long it took to exit.
func (c *cluster) term(name string) time.Duration {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	took := c.stop(p)
	if testing.Verbose() {
		c.t.Logf("output of %s:\n%s", name, p)
	}
	return took
}

// TestCleanStopLosesNothing stops the node hosting a file-log with SIGTERM
// while an http-ingress on another node streams 1,000 events/s to it: every
// event the ingress answered 200 is in the log, written by the old instance
// or by the one the orchestrator re-created on the third node.
func TestCleanStopLosesNothing(t *testing.T) {
	c := newCluster(t, 3, "")
	logFile := filepath.Join(c.dir, "seq.log")
	c.write("stream.json", fmt.Sprintf(`{"functions":[],"resources":[
{"name":"ingress","class_type":"http-ingress","output_mapping":{"new_request":"log"},
 "configurations":{"host":"stream.test","method":"POST","async":"true","node_id_match_any":%q}},
{"name":"log","class_type":"file-log","output_mapping":{},
 "configurations":{"filename":%q,"node_id_match_any":%q}}],"annotations":{}}`,
		c.nodeIDs[0], logFile, c.nodeIDs[1].String()+","+c.nodeIDs[2].String()))
	id, err := c.cli("start", filepath.Join(c.dir, "stream.json"))
	if err != nil {
		t.Fatalf("workflow start: %v: %s", err, id)
	}
	victim := c.nodeProc(findComponent(c.inspect(id), "log").Instances[0].Node)

	// The stream: one event per millisecond, each a sequence number, sent by
	// a pool of workers; bounded in count and time.
	const rate, maxEvents, maxTime = 1000, 8000, 15 * time.Second
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var (
		mu       sync.Mutex
		accepted []int
		statuses = map[int]int{}
	)
	send := func(seq int) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+c.ingress[0]+"/", strings.NewReader(strconv.Itoa(seq)))
		req.Host = "stream.test"
		status := 0
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			status = resp.StatusCode
		}
		mu.Lock()
		defer mu.Unlock()
		statuses[status]++
		if status == http.StatusOK {
			accepted = append(accepted, seq)
		}
	}
	seqs := make(chan int)
	var workers sync.WaitGroup
	for range 32 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for s := range seqs {
				send(s)
			}
		}()
	}
	stopAt := make(chan time.Time, 1)
	go func() {
		// Stop the log's node once 1,000 events were accepted, and keep
		// streaming for two seconds after it exited.
		deadline := time.Now().Add(maxTime)
		for time.Now().Before(deadline) {
			mu.Lock()
			k := len(accepted)
			mu.Unlock()
			if k >= rate {
				break
			}
			time.Sleep(time.Millisecond)
		}
		took := c.term(victim)
		t.Logf("SIGTERM to exit of %s: %v", victim, took)
		stopAt <- time.Now().Add(2 * time.Second)
	}()
	start := time.Now()
	end := start.Add(maxTime)
	sent := 0
	for sent < maxEvents && time.Now().Before(end) {
		select {
		case e := <-stopAt:
			end = e
		default:
		}
		time.Sleep(time.Until(start.Add(time.Duration(sent) * time.Second / rate))) // pacing, not synchronisation
		seqs <- sent
		sent++
	}
	close(seqs)
	workers.Wait()
	elapsed := time.Since(start)

	written := func() map[int]int {
		data, _ := os.ReadFile(logFile)
		seen := map[int]int{}
		for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
			n, err := strconv.Atoi(string(line))
			if err != nil {
				t.Fatalf("a torn or foreign line in the log: %q", line)
			}
			seen[n]++
		}
		return seen
	}
	missing := func() []int {
		seen := written()
		var lost []int
		for _, s := range accepted {
			if seen[s] == 0 {
				lost = append(lost, s)
			}
		}
		return lost
	}
	deadline := time.Now().Add(10 * time.Second)
	lost := missing()
	for len(lost) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		lost = missing()
	}
	moved := findComponent(c.inspect(id), "log").Instances
	t.Logf("sent %d events in %v (%.0f/s): statuses %v; accepted %d, lost %d; log now on %v", sent, elapsed.Round(time.Millisecond),
		float64(sent)/elapsed.Seconds(), statuses, len(accepted), len(lost), moved)
	if len(lost) > 0 {
		t.Fatalf("%d events answered 200 are not in the log, e.g. %v", len(lost), lost[:min(len(lost), 20)])
	}
	if len(moved) != 1 || c.nodeProc(moved[0].Node) == victim {
		t.Fatalf("the log was not re-created on another node: %+v", moved)
	}
	if len(accepted) < sent*9/10 {
		t.Fatalf("only %d of %d events were accepted", len(accepted), sent)
	}
	if last := accepted[len(accepted)-1]; written()[last] == 0 {
		t.Fatalf("the last accepted event %d is not in the log", last)
	}
}
