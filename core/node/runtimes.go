package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/edgeless-go/edgeless/container"
	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/native"
	"github.com/edgeless-go/edgeless/sandbox"
)

// function is a running function instance, whatever its runtime.
type function interface {
	Init(payload, state []byte) error
	Cast(src core.InstanceID, payload []byte) error
	Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error)
	Stop() error
	Close()
}

// functionRuntime runs the function types named by types.
type functionRuntime struct {
	types []string
	// start loads s.code (cached by the runtime under s.sum) and creates an
	// instance that makes its host calls through h.
	start func(s *startSpec, h functionHost) (function, error)
	// memoryMB is what an instance reserves of the node's memory budget:
	// the limit the runtime holds it to.
	memoryMB func(s *startSpec) int
	close    func() error
	// bound is the longest one handler runs, which the runtime enforces;
	// 0: none. Only a bounded handler runs on a caller's goroutine
	// (instance.runNow).
	bound time.Duration
	// ownThread: the runtime makes an instance's host calls only on the
	// goroutine running its handler, so the instance may batch what it
	// sends (instance.batchOut).
	ownThread bool
}

// limitOr returns the memory_mb annotation when set, else the runtime's
// limit def.
func limitOr(s *startSpec, def int) int {
	if s.limits.MemoryMB > 0 {
		return s.limits.MemoryMB
	}
	return def
}

// startSpec is what a runtime creates an instance from.
type startSpec struct {
	ftype       string // canonical function type
	code        []byte
	sum         [32]byte          // SHA-256 of code
	limits      spec.Requirements // MemoryMB and CPUs apply where the runtime can (0: the runtime's limit)
	annotations map[string]string
}

// startRuntimes creates the function runtimes the configuration enables.
func (n *Node) startRuntimes() error {
	if n.cfg.WASM.Enabled {
		rt, err := sandbox.New(sandbox.Config{
			CacheDir:       n.cfg.WASM.CacheDir,
			MaxMemoryBytes: int64(n.cfg.WASM.MaxMemoryMB) << 20,
			HandlerTimeout: time.Duration(n.cfg.WASM.HandlerTimeoutMS) * time.Millisecond,
			MaxInstances:   n.cfg.WASM.MaxInstances,
		}, n.log)
		if err != nil {
			return fmt.Errorf("cannot start the WASM runtime: %w", err)
		}
		// RUST_WASM is EDGELESS's name: any module implementing docs/abi.md.
		n.addRuntime(&functionRuntime{
			types:     []string{"RUST_WASM", "WASM"},
			bound:     time.Duration(n.cfg.WASM.HandlerTimeoutMS) * time.Millisecond,
			ownThread: true, // a module has no threads of its own
			start: func(s *startSpec, h functionHost) (function, error) {
				m, err := rt.LoadHashed(s.code, s.sum)
				if err != nil {
					return nil, fmt.Errorf("cannot load its code: %w", err)
				}
				inst, err := rt.InstantiateLimit(m, h, int64(s.limits.MemoryMB)<<20)
				if err != nil {
					return nil, fmt.Errorf("cannot instantiate: %w", err)
				}
				return inst, nil
			},
			// A memory_mb above the runtime's limit is held to the limit.
			memoryMB: func(s *startSpec) int { return min(limitOr(s, n.cfg.WASM.MaxMemoryMB), n.cfg.WASM.MaxMemoryMB) },
			close:    rt.Close,
		})
	}
	if n.cfg.Native.Enabled {
		rt, err := native.New(native.Config{Dir: n.cfg.Native.Dir}, n.log)
		if err != nil {
			return fmt.Errorf("cannot start the native runtime: %w", err)
		}
		allowed := map[[32]byte]bool{}
		for _, h := range n.cfg.Native.AllowedSHA256 {
			var sum [32]byte
			hex.Decode(sum[:], []byte(h)) // checked by Validate
			allowed[sum] = true
		}
		// RUST_NATIVE is the name EDGELESS's native runner uses; our
		// functions implement the C ABI of native/edgeless_native.h instead
		// of its Rust one. The code runs in this process, unisolated.
		n.addRuntime(&functionRuntime{
			types: []string{"RUST_NATIVE", "NATIVE"},
			// Native code shares the node's memory: memoryMB cannot be enforced.
			start: func(s *startSpec, h functionHost) (function, error) {
				// Hashed here, not taken from the request: the pin must hold
				// whoever sends the code.
				if sum := sha256.Sum256(s.code); !allowed[sum] {
					return nil, fmt.Errorf("native code with SHA-256 %x is not in this node's native_runtime.allowed_sha256", sum)
				}
				m, err := rt.Load(s.code)
				if err != nil {
					return nil, err
				}
				inst, err := rt.Instantiate(m, h)
				if err != nil {
					return nil, err
				}
				return inst, nil
			},
			// Unenforced: only what the function declares.
			memoryMB: func(s *startSpec) int { return limitOr(s, 0) },
			close:    rt.Close,
		})
		n.log.Info("native runtime enabled: native functions run inside this process without isolation; a crash in one stops the node",
			"allowed", len(allowed))
	}
	if n.cfg.Container.Enabled {
		if err := n.startContainerRuntime(); err != nil {
			return err
		}
	}
	return nil
}

// startContainerRuntime offers the container function types when a Docker
// daemon answers; without one the node runs on without them.
func (n *Node) startContainerRuntime() error {
	c := n.cfg.Container
	rt, err := container.New(container.Config{
		NodeID:         n.id,
		DockerHost:     c.DockerHost,
		Network:        c.Network,
		HostURL:        c.GuestAPIHostURL,
		StartTimeout:   time.Duration(c.StartTimeoutMS) * time.Millisecond,
		HandlerTimeout: time.Duration(c.HandlerTimeoutMS) * time.Millisecond,
		IdleExpiration: time.Duration(c.IdleExpirationSec * float64(time.Second)),
		Prewarm:        c.Prewarm,
		Spares:         c.SpareContainers,
		Prestart:       []string{c.Python310Image},
		MemoryMB:       c.MaxMemoryMB,
		CPUs:           c.CPUs,
	}, n.log)
	if err == nil {
		// A daemon too busy to answer within the bound does not hold up
		// the node: it runs on without containers.
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.StartTimeoutMS)*time.Millisecond)
		err = rt.Start(ctx)
		cancel()
		if err != nil {
			rt.Close()
		}
	}
	if errors.Is(err, container.ErrNoDaemon) || errors.Is(err, context.DeadlineExceeded) {
		n.log.Info("container runtime off", "reason", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot start the container runtime: %w", err)
	}
	n.addRuntime(&functionRuntime{
		types: []string{spec.FunctionTypeContainer, spec.FunctionTypePython310, spec.FunctionTypeCustom},
		start: func(s *startSpec, h functionHost) (function, error) {
			cs, err := containerSpec(s, c.Python310Image)
			if err != nil {
				return nil, err
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(c.StartTimeoutMS)*time.Millisecond)
			defer cancel()
			inst, err := rt.Instantiate(ctx, cs, h)
			if err != nil {
				return nil, fmt.Errorf("%s function: %w", s.ftype, err)
			}
			return inst, nil
		},
		memoryMB: func(s *startSpec) int { return limitOr(s, c.MaxMemoryMB) },
		close:    rt.Close,
	})
	n.registerContainerMetrics(rt)
	return nil
}

// registerContainerMetrics exports the container runtime's counts.
func (n *Node) registerContainerMetrics(rt *container.Runtime) {
	stat := func(f func(container.Stats) float64) func() float64 {
		return func() float64 { return f(rt.Stats()) }
	}
	const live, starts = "edgeless_node_containers", "edgeless_node_container_starts_total"
	n.reg.Gauge(live, "Containers of the node's container runtime, by state.", `state="all"`,
		stat(func(s container.Stats) float64 { return float64(s.Containers) }))
	n.reg.Gauge(live, "Containers of the node's container runtime, by state.", `state="spare"`,
		stat(func(s container.Stats) float64 { return float64(s.Spares) }))
	n.reg.Gauge(live, "Containers of the node's container runtime, by state.", `state="idle"`,
		stat(func(s container.Stats) float64 { return float64(s.Idle) }))
	n.reg.CounterFunc(starts, "Containers taken into use: created (a cold start) or a spare.", `from="create"`,
		stat(func(s container.Stats) float64 { return float64(s.Created) }))
	n.reg.CounterFunc(starts, "Containers taken into use: created (a cold start) or a spare.", `from="spare"`,
		stat(func(s container.Stats) float64 { return float64(s.FromSpare) }))
	n.reg.CounterFunc("edgeless_node_container_failures_total", "Containers that died, hung or ran out of memory in a handler.", "",
		stat(func(s container.Stats) float64 { return float64(s.Failed) }))
	n.reg.CounterFunc("edgeless_node_container_evictions_total", "Idle containers removed after the idle expiration.", "",
		stat(func(s container.Stats) float64 { return float64(s.Evicted) }))
	n.reg.CounterFunc("edgeless_node_container_host_calls_total", "Host calls of container functions, served or refused.", `result="served"`,
		stat(func(s container.Stats) float64 { return float64(s.HostCalls) }))
	n.reg.CounterFunc("edgeless_node_container_host_calls_total", "Host calls of container functions, served or refused.", `result="refused"`,
		stat(func(s container.Stats) float64 { return float64(s.HostRefused) }))
}

// containerSpec maps a function to what the container runtime
// runs: an image named by the code (CONTAINER), or a language runtime's
// image running the annotation "handler" from the code.
func containerSpec(s *startSpec, python310Image string) (container.Spec, error) {
	cs := container.Spec{MemoryMB: s.limits.MemoryMB, CPUs: s.limits.CPUs}
	switch s.ftype {
	case spec.FunctionTypeContainer:
		img, err := container.Image(string(s.code))
		if err != nil {
			return cs, err
		}
		cs.Image = img
		return cs, nil
	case spec.FunctionTypePython310:
		cs.Image = python310Image
	case spec.FunctionTypeCustom:
		cs.Image = s.annotations[spec.KeyCustomImage]
		if cs.Image == "" {
			return cs, fmt.Errorf("a custom function needs the annotation %q", spec.KeyCustomImage)
		}
	}
	cs.Runtime, cs.Code, cs.CodeSum, cs.Handler = s.ftype, s.code, s.sum, s.annotations[spec.KeyHandler]
	return cs, nil
}

func (n *Node) addRuntime(rt *functionRuntime) {
	for _, t := range rt.types {
		n.fns[t] = rt
	}
}

// runtimes returns the function types the node offers, sorted.
func (n *Node) runtimes() []string {
	var out []string
	for t := range n.fns {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// closeRuntimes closes each runtime once; instances must be gone.
func (n *Node) closeRuntimes() {
	closed := map[*functionRuntime]bool{}
	for _, rt := range n.fns {
		if closed[rt] {
			continue
		}
		closed[rt] = true
		if err := rt.close(); err != nil {
			n.log.Warn("cannot close a function runtime", "types", rt.types, "err", err)
		}
	}
}

var (
	_ sandbox.Host   = functionHost{}
	_ native.Host    = functionHost{}
	_ container.Host = functionHost{}
	_ function       = (*sandbox.Instance)(nil)
	_ function       = (*native.Instance)(nil)
	_ function       = (*container.Instance)(nil)
	_ exiter         = (*container.Instance)(nil)
)
