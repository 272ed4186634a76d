package node

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/edgeless-go/edgeless/core"
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
	// start loads code (cached by the runtime under sum, its SHA-256) and
	// creates an instance that makes its host calls through h, its memory
	// limited to memoryMB when the runtime can (0: the runtime's limit).
	start func(code []byte, sum [32]byte, memoryMB int, h functionHost) (function, error)
	close func() error
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
			types: []string{"RUST_WASM", "WASM"},
			start: func(code []byte, sum [32]byte, memoryMB int, h functionHost) (function, error) {
				m, err := rt.LoadHashed(code, sum)
				if err != nil {
					return nil, fmt.Errorf("cannot load its code: %w", err)
				}
				inst, err := rt.InstantiateLimit(m, h, int64(memoryMB)<<20)
				if err != nil {
					return nil, fmt.Errorf("cannot instantiate: %w", err)
				}
				return inst, nil
			},
			close: rt.Close,
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
			start: func(code []byte, _ [32]byte, _ int, h functionHost) (function, error) {
				// Hashed here, not taken from the request: the pin must hold
				// whoever sends the code.
				if sum := sha256.Sum256(code); !allowed[sum] {
					return nil, fmt.Errorf("native code with SHA-256 %x is not in this node's native_runtime.allowed_sha256", sum)
				}
				m, err := rt.Load(code)
				if err != nil {
					return nil, err
				}
				inst, err := rt.Instantiate(m, h)
				if err != nil {
					return nil, err
				}
				return inst, nil
			},
			close: rt.Close,
		})
		n.log.Info("native runtime enabled: native functions run inside this process without isolation; a crash in one stops the node",
			"allowed", len(allowed))
	}
	return nil
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
	_ sandbox.Host = functionHost{}
	_ native.Host  = functionHost{}
	_ function     = (*sandbox.Instance)(nil)
	_ function     = (*native.Instance)(nil)
)
