package controller

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"maps"
	"strings"
	"testing"

	"github.com/edgeless-go/edgeless/core/spec"
)

func tarBytes(files ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i+1 < len(files); i += 2 {
		tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o644, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	return buf.Bytes()
}

// TestServerledgeCreate maps Serverledge's create bodies onto ours: the
// module out of the tar for wasm and native, the whole archive and the
// handler and image annotations for the language runtimes.
func TestServerledgeCreate(t *testing.T) {
	f := func(fn spec.ServerledgeFunction, wantCode string, wantAnn map[string]string, wantErr string) {
		t.Helper()
		got, err := serverledgeCreate(&fn)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("%+v: error %v, want %q", fn, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%+v: %v", fn, err)
		}
		if string(got.Code) != wantCode || !maps.Equal(got.Annotations, wantAnn) || got.Runtime != fn.Runtime || got.MemoryMB != int(fn.MemoryMB) {
			t.Fatalf("%+v → %+v, want code %q, annotations %v", fn, got, wantCode, wantAnn)
		}
	}
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	zero := map[string]string{spec.KeyMinInstances: "0"}
	f(spec.ServerledgeFunction{Name: "f", Runtime: "wasm", MemoryMB: 16, TarFunctionCode: b64(tarBytes("f.wasm", "MOD"))}, "MOD", zero, "")
	f(spec.ServerledgeFunction{Name: "f", Runtime: "wasm", MemoryMB: 16, TarFunctionCode: b64(tarBytes("README", "doc", "dir/f.wasm", "MOD"))}, "MOD", zero, "")
	f(spec.ServerledgeFunction{Name: "f", Runtime: "native", MemoryMB: 16, TarFunctionCode: b64(tarBytes("lib", "SO"))}, "SO", zero, "")
	f(spec.ServerledgeFunction{Name: "f", Runtime: "native", TarFunctionCode: b64(tarBytes("a", "1", "b", "2"))}, "", nil, "holds 2 files (a, b) and not exactly one *.so")
	f(spec.ServerledgeFunction{Name: "f", Runtime: "wasm", TarFunctionCode: b64(nil)}, "", nil, "holds no file")
	f(spec.ServerledgeFunction{Name: "f", Runtime: "wasm", TarFunctionCode: "not base64!"}, "", nil, "not base64")
	f(spec.ServerledgeFunction{Name: "f", Runtime: "wasm", TarFunctionCode: b64([]byte("not a tar archive at all, but long enough to look at........................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................"))}, "", nil, "not a tar archive")
	archive := tarBytes("m.py", "def h(p, c): return 1")
	f(spec.ServerledgeFunction{Name: "p", Runtime: "python310", MemoryMB: 64, Handler: "m.h", TarFunctionCode: b64(archive)}, string(archive),
		map[string]string{spec.KeyMinInstances: "0", "handler": "m.h"}, "")
	f(spec.ServerledgeFunction{Name: "c", Runtime: "custom", MemoryMB: 64, Handler: "m.h", CustomImage: "me/img:1", TarFunctionCode: b64(archive)}, string(archive),
		map[string]string{spec.KeyMinInstances: "0", "handler": "m.h", "custom_image": "me/img:1"}, "")
}

func TestServerledgePaths(t *testing.T) {
	for p, want := range map[string]bool{"/create": true, "/invoke/f": true, "/poll/x": true, "/function": true, "/status": true,
		"/prewarm": true, "/delete": true, "/invoke": false, "/creates": false, "/api/v1/functions": false, "/": false} {
		if got := isServerledgePath(p); got != want {
			t.Errorf("isServerledgePath(%q) = %v, want %v", p, got, want)
		}
	}
	f := func(auth, remote string, want bool) {
		t.Helper()
		c := &Con{cfg: Config{ServerledgeAuth: auth}}
		if got := c.mayGoWithoutToken(remoteIP(remote)); got != want {
			t.Errorf("serverledge_auth %s from %s: %v, want %v", auth, remote, got, want)
		}
	}
	f(ServerledgeAuthLoopback, "127.0.0.1:5000", true)
	f(ServerledgeAuthLoopback, "[::1]:5000", true)
	f(ServerledgeAuthLoopback, "127.0.0.2:5000", false)
	f(ServerledgeAuthLoopback, "10.0.0.1:5000", false)
	f(ServerledgeAuthLoopback, "garbage", false)
	f(ServerledgeAuthToken, "127.0.0.1:5000", false)
	f(ServerledgeAuthNone, "10.0.0.1:5000", true)
}

func FuzzCodeFromTar(f *testing.F) {
	f.Add(tarBytes("f.wasm", "MOD"), ".wasm")
	f.Add(tarBytes("a", "1", "b.so", "2"), ".so")
	f.Fuzz(func(t *testing.T, archive []byte, ext string) {
		code, err := codeFromTar(archive, ext)
		if err == nil && code == nil {
			t.Fatal("no error and no code")
		}
	})
}
