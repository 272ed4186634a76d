package cli

import (
	"strings"
	"testing"
)

func TestSplitGlobal(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := strings.Join(splitGlobal(strings.Fields(in)), " "); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	f("start -controller-url U f.json", "-controller-url U start f.json")
	f("start f.json --config-file cli.toml", "--config-file cli.toml start f.json")
	f("-c x.toml list", "-c x.toml list")
	f("create -f NAME --src a.wasm -controller-url=U", "-controller-url=U create -f NAME --src a.wasm")
	f("start -- -c f.json", "start -- -c f.json")
}
