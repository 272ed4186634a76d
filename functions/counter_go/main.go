//go:build wasip1

// Command counter_go is the Go SDK's counter: every period milliseconds it
// increments a counter, persists it with Sync and casts it as decimal text
// to output "output". Calls answer with the current value.
//
// init-payload: period=MS (default 1000), start=N (default 0, the value
// before the first tick). State: the counter as decimal text; when present
// it takes precedence over start. The timer is a delayed cast of "wakeup"
// to "self"; other casts are ignored.
package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/functions/sdk/go/edgeless"
)

const wakeup = "wakeup"

type counter struct {
	edgeless.Base
	period time.Duration
	count  int64
}

func (c *counter) HandleInit(payload, state []byte) {
	args := edgeless.InitArgs(payload)
	c.period = time.Second
	if ms, err := strconv.ParseInt(args["period"], 10, 64); err == nil && ms > 0 {
		c.period = time.Duration(ms) * time.Millisecond
	}
	if n, err := strconv.ParseInt(args["start"], 10, 64); err == nil {
		c.count = n
	}
	if state != nil {
		n, err := strconv.ParseInt(strings.TrimSpace(string(state)), 10, 64)
		if err != nil {
			edgeless.Log(edgeless.LevelWarn, "counter_go", "ignoring a state that is not a number")
		} else {
			c.count = n
		}
	}
	edgeless.DelayedCast(c.period, "self", []byte(wakeup))
}

func (c *counter) HandleCast(src edgeless.InstanceID, payload []byte) {
	if string(payload) != wakeup {
		return
	}
	c.count++
	num := strconv.AppendInt(nil, c.count, 10)
	edgeless.Sync(num)
	edgeless.Cast("output", num)
	edgeless.DelayedCast(c.period, "self", []byte(wakeup))
}

func (c *counter) HandleCall(src edgeless.InstanceID, payload []byte) (edgeless.CallRet, []byte) {
	return edgeless.Reply, strconv.AppendInt(nil, c.count, 10)
}

func init() { edgeless.Register(&counter{}) }

func main() {}
