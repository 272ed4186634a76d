package node

import (
	"strings"
	"testing"

	"github.com/edgeless-go/edgeless/container"
	"github.com/edgeless-go/edgeless/core/spec"
)

func TestContainerSpec(t *testing.T) {
	f := func(name string, s startSpec, want container.Spec, wantErr string) {
		t.Helper()
		got, err := containerSpec(&s, "py:310")
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("%s: err = %v, want one containing %q", name, err, wantErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Image != want.Image || got.Runtime != want.Runtime || got.Handler != want.Handler ||
			got.MemoryMB != want.MemoryMB || got.CPUs != want.CPUs || string(got.Code) != string(want.Code) {
			t.Fatalf("%s: got %+v, want %+v", name, got, want)
		}
	}
	limits := spec.Requirements{MemoryMB: 64, CPUs: 0.5}
	f("EDGELESS container", startSpec{ftype: spec.FunctionTypeContainer, code: []byte("container:img:1"), limits: limits},
		container.Spec{Image: "img:1", MemoryMB: 64, CPUs: 0.5}, "")
	f("bad image", startSpec{ftype: spec.FunctionTypeContainer, code: []byte("container:")}, container.Spec{}, "bad container image")
	f("python310", startSpec{ftype: spec.FunctionTypePython310, code: []byte("src"), annotations: map[string]string{"handler": "m.h"}},
		container.Spec{Image: "py:310", Runtime: "python310", Code: []byte("src"), Handler: "m.h"}, "")
	f("custom", startSpec{ftype: spec.FunctionTypeCustom, code: []byte("src"), annotations: map[string]string{"handler": "m.h", "custom_image": "mine:2"}},
		container.Spec{Image: "mine:2", Runtime: "custom", Code: []byte("src"), Handler: "m.h"}, "")
	f("custom without image", startSpec{ftype: spec.FunctionTypeCustom, code: []byte("src")}, container.Spec{}, `"custom_image"`)
}
