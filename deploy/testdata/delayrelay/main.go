// Command delayrelay forwards TCP connections to a target and delays every
// byte by a fixed time in each direction: a slow link for tests on kernels
// without netem. Usage: delayrelay LISTEN TARGET DELAY (e.g. :7006 node2:7006 50ms).
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: delayrelay LISTEN TARGET DELAY")
		os.Exit(2)
	}
	delay, err := time.ParseDuration(os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for {
		in, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go relay(in, os.Args[2], delay)
	}
}

func relay(in net.Conn, target string, delay time.Duration) {
	out, err := net.Dial("tcp", target)
	if err != nil {
		in.Close()
		return
	}
	go pump(out, in, delay)
	pump(in, out, delay)
}

// chunk is bytes read and when they may be written.
type chunk struct {
	data []byte
	at   time.Time
}

// pump copies src to dst, each chunk delay after it was read, in order.
func pump(dst, src net.Conn, delay time.Duration) {
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{buf[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	io.Copy(io.Discard, src)
}
