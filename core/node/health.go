package node

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edgeless-go/edgeless/wire"
)

// healthReader reads the node's health from /proc for every registration.
type healthReader struct {
	dir string // a directory on the disk whose free space is reported

	mu       sync.Mutex
	lastCPU  float64 // process CPU seconds at the last read
	lastWall time.Time
}

// clockTicks is USER_HZ, the unit of /proc/self/stat's CPU times; 100 on
// every Linux architecture we run on.
const clockTicks = 100

// read returns the current health; fields it cannot read are -1.
func (h *healthReader) read() wire.NodeHealth {
	s := wire.NodeHealth{GPULoadPerc: -1, GPUTempCels: -1, ActivePower: -1}
	mem := keyValues("/proc/meminfo")
	s.MemFree, s.MemAvailable = mem["MemFree"], mem["MemAvailable"]
	s.MemUsed = mem["MemTotal"] - mem["MemAvailable"]
	status := keyValues("/proc/self/status")
	s.ProcMemory, s.ProcVMemory = status["VmRSS"], status["VmSize"]
	s.ProcCPUUsage = h.cpuPercent()
	if f := fields("/proc/loadavg"); len(f) >= 3 {
		s.LoadAvg1, s.LoadAvg5, s.LoadAvg15 = hundredths(f[0]), hundredths(f[1]), hundredths(f[2])
	}
	s.TotRxBytes, s.TotRxPkts, s.TotRxErrs, s.TotTxBytes, s.TotTxPkts, s.TotTxErrs = netTotals()
	s.DiskFreeSpace = -1
	var fs syscall.Statfs_t
	dir := h.dir
	if _, err := os.Stat(dir); err != nil {
		dir = "."
	}
	if syscall.Statfs(dir, &fs) == nil {
		s.DiskFreeSpace = int64(fs.Bavail) * fs.Bsize
	}
	s.DiskTotReads, s.DiskTotWrites = diskTotals()
	return s
}

// cpuPercent is the node process's CPU use since the previous read, in
// percent of one CPU.
func (h *healthReader) cpuPercent() float64 {
	f := fields("/proc/self/stat")
	// The command name may contain spaces; count fields after its ')'.
	data, _ := os.ReadFile("/proc/self/stat")
	if i := bytes.LastIndexByte(data, ')'); i >= 0 {
		f = strings.Fields(string(data[i+1:]))
	}
	if len(f) < 13 {
		return -1
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	cpu := (utime + stime) / clockTicks
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	pct := 0.0
	if !h.lastWall.IsZero() {
		if wall := now.Sub(h.lastWall).Seconds(); wall > 0 {
			pct = 100 * (cpu - h.lastCPU) / wall
		}
	}
	h.lastCPU, h.lastWall = cpu, now
	return pct
}

// keyValues reads "Key: value kB" lines.
func keyValues(path string) map[string]int64 {
	out := map[string]int64{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		if fs := strings.Fields(v); len(fs) > 0 {
			n, _ := strconv.ParseInt(fs[0], 10, 64)
			out[k] = n
		}
	}
	return out
}

func fields(path string) []string {
	data, _ := os.ReadFile(path)
	return strings.Fields(string(data))
}

func hundredths(s string) int64 {
	f, _ := strconv.ParseFloat(s, 64)
	return int64(f * 100)
}

// netTotals sums /proc/net/dev over every interface but loopback.
func netTotals() (rxBytes, rxPkts, rxErrs, txBytes, txPkts, txErrs int64) {
	data, _ := os.ReadFile("/proc/net/dev")
	for _, line := range strings.Split(string(data), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 11 {
			continue
		}
		n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		rxBytes, rxPkts, rxErrs = rxBytes+n(0), rxPkts+n(1), rxErrs+n(2)
		txBytes, txPkts, txErrs = txBytes+n(8), txPkts+n(9), txErrs+n(10)
	}
	return
}

// diskTotals sums bytes read and written over whole disks (not partitions).
func diskTotals() (read, written int64) {
	data, _ := os.ReadFile("/proc/diskstats")
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		if _, err := os.Stat(filepath.Join("/sys/block", f[2])); err != nil {
			continue // a partition, counted in its disk
		}
		r, _ := strconv.ParseInt(f[5], 10, 64)
		w, _ := strconv.ParseInt(f[9], 10, 64)
		read, written = read+r*512, written+w*512
	}
	return
}
