package sandbox

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/edgeless-go/edgeless/core"
)

func TestWASIGuestC(t *testing.T) {
	r := newRuntime(t, Config{})
	m := load(t, r, wasiGuest(t))
	h := &recordingHost{}
	i := instantiate(t, r, m, h)
	if err := i.Init(nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := i.Cast(srcID, binPayload); err != nil {
		t.Fatal(err)
	}
	want := []hostCall{{Op: "cast", Out: "out", Data: cat([]byte("wasi1:"), binPayload)}}
	if got := h.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("host got %+v, want %+v", got, want)
	}
}

func TestGoReactor(t *testing.T) {
	code := goReactor(t)
	r := newRuntime(t, Config{})
	m := load(t, r, code)
	h := &recordingHost{}
	i := instantiate(t, r, m, h)
	if err := i.Init([]byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if err := i.Cast(srcID, binPayload); err != nil {
		t.Fatal(err)
	}
	want := []hostCall{{Op: "cast", Out: "out", Data: cat([]byte("go1:"), binPayload)}}
	if got := h.take(); !reflect.DeepEqual(got, want) {
		t.Fatalf("host got %+v, want %+v", got, want)
	}
	ret, reply, err := i.Call(srcID, binPayload)
	if err != nil || ret != core.CallReply || !bytes.Equal(reply, cat([]byte("!"), binPayload)) {
		t.Fatalf("Call = %v %q %v", ret, reply, err)
	}
	// A second instance has its own Go runtime and state.
	i2 := instantiate(t, r, m, h)
	if err := i2.Cast(srcID, []byte("y")); err != nil {
		t.Fatal(err)
	}
	if got := h.take(); len(got) != 1 || string(got[0].Data) != "go0:y" {
		t.Fatalf("second instance: host got %+v", got)
	}
}
