package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadConfigWith(t *testing.T) {
	type cfg struct {
		General struct {
			NodeID string `toml:"node_id"`
		} `toml:"general"`
	}
	ignored := map[string]string{
		"general.agent_url":  "shared listener",
		"container_runtime":  "no containers",
		"resources.dda":      "no dda",
		"resources.ollama":   "no ollama",
		"resources.servless": "no serverless",
	}
	f := func(strict bool, doc string, want []string, wantErr string) {
		t.Helper()
		p := filepath.Join(t.TempDir(), "n.toml")
		os.WriteFile(p, []byte(doc), 0o644)
		var c cfg
		warns, err := LoadConfigWith(p, &c, LoadOptions{Strict: strict, Ignored: ignored})
		var got []string
		for _, w := range warns {
			got = append(got, w.Key+": "+w.Msg)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%q: warnings %q, want %q", doc, got, want)
		}
		if (err == nil) != (wantErr == "") || err != nil && !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%q: error %v, want %q", doc, err, wantErr)
		}
	}
	f(true, "[general]\nnode_id = \"x\"\nagent_url = \"http://a:1\"\n", []string{"general.agent_url: shared listener"}, "")
	// A table is reported once, and not at all when it is switched off.
	f(true, "[container_runtime]\nenabled = true\nguest_api_host_url = \"u\"\n", []string{"container_runtime: no containers"}, "")
	f(true, "[container_runtime]\nenabled = false\nguest_api_host_url = \"u\"\n", nil, "")
	f(true, "[resources.ollama]\nhost = \"localhost\"\nport = 11434\nprovider = \"\"\n", nil, "")
	f(true, "[[resources.servless]]\nclass_type = \"\"\nprovider = \"\"\n", nil, "")
	f(true, "[resources]\ndda = \"\"\n", nil, "")
	f(true, "[resources]\ndda = \"dda-1\"\n", []string{"resources.dda: no dda"}, "")
	// Unknown keys: refused when strict, warned about otherwise.
	f(true, "[general]\nnode_idd = \"x\"\n", nil, "general.node_idd: unknown key")
	f(false, "[general]\nnode_idd = \"x\"\n[other]\na = 1\nb = 2\n", []string{"general.node_idd: unknown key, ignored", "other: unknown key, ignored"}, "")
}
