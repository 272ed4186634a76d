// Command double_go is a container function: it casts twice the decimal
// integer it receives to output "output", and answers a call with it.
package main

import (
	"fmt"
	"log"
	"strconv"

	"github.com/edgeless-go/edgeless/container/function"
)

type double struct{ h *function.Host }

func (d *double) Init(string, []byte) error { return nil }

func (d *double) Cast(_ function.InstanceID, msg []byte) {
	out, err := twice(msg)
	if err != nil {
		d.h.TelemetryLog(function.LogError, "double", err.Error())
		return
	}
	d.h.Cast("output", out)
}

func (d *double) Call(_ function.InstanceID, msg []byte) ([]byte, error) { return twice(msg) }

func (d *double) Stop() {}

func twice(msg []byte) ([]byte, error) {
	n, err := strconv.ParseInt(string(msg), 10, 62)
	if err != nil {
		return nil, fmt.Errorf("not a number: %q", msg)
	}
	return strconv.AppendInt(nil, 2*n, 10), nil
}

func main() {
	err := function.Serve("", func(h *function.Host) function.Function { return &double{h} })
	if err != nil {
		log.Fatal(err)
	}
}
