package edgeless

import (
	"maps"
	"testing"
)

func TestInitArgs(t *testing.T) {
	f := func(payload string, want map[string]string) {
		t.Helper()
		got := InitArgs([]byte(payload))
		if !maps.Equal(got, want) {
			t.Fatalf("InitArgs(%q) = %v, want %v", payload, got, want)
		}
	}
	f("", map[string]string{})
	f("period=100", map[string]string{"period": "100"})
	f("message=hello world,period=1000", map[string]string{"message": "hello world", "period": "1000"})
	f(" a = 1 , b=2 ", map[string]string{"a": "1", "b": "2"})
	f("a=1,a=2", map[string]string{"a": "2"})
	f("url=http://x/?q=1,flag", map[string]string{"url": "http://x/?q=1"})
	f("a=,=b", map[string]string{"a": "", "": "b"})
}

func TestInitArg(t *testing.T) {
	f := func(payload, key, want string, wantOK bool) {
		t.Helper()
		got, ok := InitArg([]byte(payload), key)
		if got != want || ok != wantOK {
			t.Fatalf("InitArg(%q, %q) = %q, %v; want %q, %v", payload, key, got, ok, want, wantOK)
		}
	}
	f("period=100,start=5", "start", "5", true)
	f("period=100", "start", "", false)
	f("", "period", "", false)
}
