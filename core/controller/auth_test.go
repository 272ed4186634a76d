package controller

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeless-go/edgeless/internal/testutil"
)

func TestLoadTokensErrors(t *testing.T) {
	f := func(content, want string) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "tokens")
		os.WriteFile(path, []byte(content), 0o600)
		_, err := LoadTokens(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%q: err = %v, want %q", content, err, want)
		}
	}
	f("admin alice\n", "tokens:1: want ROLE NAME SHA256HEX")
	f("# a comment\n\nroot alice "+strings.Repeat("ab", 32)+"\n", `tokens:3: unknown role "root"`)
	f("admin alice abcd\n", "tokens:1: the hash is not a SHA-256 in hex")
}

// TestAuthenticator: roles, missing and unknown tokens, and a tokens file
// whose changes (an added token, a revoked one) are taken up without a
// restart.
func TestAuthenticator(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	admin, adminRec := NewToken(RoleAdmin, "root")
	invoker, invokerRec := NewToken(RoleInvoker, "bob")
	if err := os.WriteFile(path, []byte(invokerRec.Line()), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := newAuthenticator(path, []Token{adminRec}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f := func(token string, need Role, want int) {
		t.Helper()
		authz := ""
		if token != "" {
			authz = "Bearer " + token
		}
		if got, err := a.check(authz, need); got != want {
			t.Fatalf("token %.8s… for %s: status %d (%v), want %d", token, need, got, err, want)
		}
	}
	f("", RoleInvoker, http.StatusUnauthorized)
	f("edg_nonsense", RoleInvoker, http.StatusUnauthorized)
	f(invoker, RoleInvoker, 0)
	f(invoker, RoleDeployer, http.StatusForbidden)
	f(admin, RoleAdmin, 0)

	deployer, deployerRec := NewToken(RoleDeployer, "alice")
	if err := os.WriteFile(path, []byte(deployerRec.Line()), 0o600); err != nil { // bob revoked, alice added
		t.Fatal(err)
	}
	until := func(what string, token string, need Role, want int) {
		t.Helper()
		testutil.Eventually(t, 5*time.Second, what, func() bool {
			status, _ := a.check("Bearer "+token, need)
			return status == want
		})
	}
	until("the added token taken up", deployer, RoleDeployer, 0)
	until("the revoked token refused", invoker, RoleInvoker, http.StatusUnauthorized)
	f(admin, RoleAdmin, 0) // tokens from the configuration stay

	var nilAuth *authenticator
	if status, err := nilAuth.check("", RoleAdmin); status != 0 || err != nil {
		t.Fatalf("authentication off: %d %v", status, err)
	}
}
