package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestScenarioValidate(t *testing.T) {
	f := func(args []string, want string) {
		t.Helper()
		err := Run(context.Background(), append([]string{"--scenario"}, args...), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an error containing %q", args, err, want)
		}
	}
	f([]string{"nope"}, `--scenario "nope"`)
	f([]string{"invoke", "--clients", "0"}, "--clients")
	f([]string{"payload", "--sizes", "8"}, "--sizes")
	f([]string{"chain", "--lengths", "1,x"}, "--lengths")
	f([]string{"chain", "--runtime", "jvm"}, "--runtime")
	f([]string{"chain", "--point", "0"}, "--point")
	f([]string{"nodes", "--counts", "0"}, "--counts")
}

// TestScenarios runs every scenario at its smallest: one short point each.
func TestScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters")
	}
	f := func(args []string, rows int, bad ...string) {
		t.Helper()
		dir := t.TempDir()
		var out bytes.Buffer
		args = append(args, "--point", "0.2", "--point-warmup", "0.05", "--log-level", "error",
			"--output", filepath.Join(dir, "out.csv"), "--plots", filepath.Join(dir, "p"))
		if err := Run(context.Background(), args, &out); err != nil {
			t.Fatalf("%q: %v\n%s", args, err, &out)
		}
		s := out.String()
		var got int
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, "_us=") {
				got++
			}
		}
		if got != rows {
			t.Errorf("%q: %d rows with latencies, want %d:\n%s", args, got, rows, s)
		}
		for _, b := range bad {
			if regexp.MustCompile(b).MatchString(s) {
				t.Errorf("%q: output matches %q:\n%s", args, b, s)
			}
		}
		csv, _ := os.ReadFile(filepath.Join(dir, "out.csv"))
		if !bytes.Contains(csv, []byte(",scenario:")) {
			t.Errorf("%q: CSV lacks scenario rows:\n%.600s", args, csv)
		}
	}
	// two points, async+poll, and three rounds of the largest against http-ingress
	f([]string{"--scenario", "invoke", "--clients", "1,2"}, 12, `errors=[1-9]`, ` n=0 `)
	f([]string{"--scenario", "rate", "--clients", "4", "--rates", "200"}, 1, `errors=[1-9]`, `unsent=[1-9]`, ` n=0 `)
	f([]string{"--scenario", "cold", "--reps", "1"}, 4, ` n=0 `)
	f([]string{"--scenario", "chain", "--lengths", "2", "--window", "4"}, 4, `txn=0 `, `failed`)
	f([]string{"--scenario", "payload", "--sizes", "4096", "--window", "4", "--runtime", "so"}, 4, `txn=0 `, `failed`)
	// The nodes scenario runs this binary as an orchestrator: not from a
	// test binary.
	f([]string{"--scenario", "instances", "--counts", "3,5"}, 3, `txn=0 `, `failed`)
	f([]string{"--scenario", "workflows", "--counts", "2,4"}, 4, `failed`)
}
