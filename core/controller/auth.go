package controller

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Role is what an API token may do. Each role may do what the roles below it
// may.
type Role int

// The API's roles.
const (
	// RoleInvoker invokes standalone functions and polls their results.
	RoleInvoker Role = iota + 1
	// RoleDeployer also starts, stops and inspects workflows and creates
	// and deletes functions: it runs code on the cluster's nodes.
	RoleDeployer
	// RoleAdmin also moves workflows between nodes.
	RoleAdmin
)

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	for r := RoleInvoker; r <= RoleAdmin; r++ {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (want admin, deployer or invoker)", s)
}

func (r Role) String() string {
	switch r {
	case RoleInvoker:
		return "invoker"
	case RoleDeployer:
		return "deployer"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// Token is an API token as the controller keeps it: its SHA-256, never the
// token itself.
type Token struct {
	Role Role
	Name string   // who holds it, for logs
	Hash [32]byte // SHA-256 of the token
}

// NewToken returns a fresh random token and its record.
func NewToken(role Role, name string) (string, Token) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("BUG: crypto/rand failed: " + err.Error())
	}
	tok := "edg_" + hex.EncodeToString(b[:])
	return tok, Token{Role: role, Name: name, Hash: sha256.Sum256([]byte(tok))}
}

// Line returns the token's line in a tokens file.
func (t Token) Line() string {
	return t.Role.String() + " " + t.Name + " " + hex.EncodeToString(t.Hash[:]) + "\n"
}

// LoadTokens reads a tokens file: one token a line, "ROLE NAME SHA256HEX";
// blank lines and lines starting with # are skipped.
func LoadTokens(path string) ([]Token, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read API tokens: %w", err)
	}
	var out []Token
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		bad := func(msg string) error { return fmt.Errorf("%s:%d: %s", path, line, msg) }
		if len(f) != 3 {
			return nil, bad("want ROLE NAME SHA256HEX")
		}
		role, err := ParseRole(f[0])
		if err != nil {
			return nil, bad(err.Error())
		}
		h, err := hex.DecodeString(f[2])
		if err != nil || len(h) != sha256.Size {
			return nil, bad("the hash is not a SHA-256 in hex")
		}
		t := Token{Role: role, Name: f[1]}
		copy(t.Hash[:], h)
		out = append(out, t)
	}
	return out, nil
}

// authenticator checks bearer tokens. The tokens of its file are re-read
// when the file changes (checked at most once a second), so that tokens are
// added and revoked without a restart. It is safe for concurrent use.
type authenticator struct {
	path   string  // "" when only fixed tokens exist
	fixed  []Token // tokens given in the configuration
	tokens atomic.Pointer[map[[32]byte]Token]
	log    *slog.Logger

	checked atomic.Int64 // Unix nanoseconds of the last look at the file
	mu      sync.Mutex   // serialises reloads
	stamp   fileStamp    // of the file last read; guarded by mu
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// newAuthenticator returns nil when authentication is off (no file, no
// fixed tokens).
func newAuthenticator(path string, fixed []Token, log *slog.Logger) (*authenticator, error) {
	if path == "" && len(fixed) == 0 {
		return nil, nil
	}
	a := &authenticator{path: path, fixed: fixed, log: log}
	if err := a.reload(); err != nil {
		return nil, err
	}
	a.checked.Store(time.Now().UnixNano())
	return a, nil
}

// reload reads the tokens file if it changed since the last read.
func (a *authenticator) reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	tokens := a.fixed
	var stamp fileStamp
	if a.path != "" {
		fi, err := os.Stat(a.path)
		if err != nil {
			return fmt.Errorf("cannot read API tokens: %w", err)
		}
		stamp = fileStamp{fi.ModTime(), fi.Size()}
		if a.tokens.Load() != nil && stamp == a.stamp {
			return nil
		}
		t, err := LoadTokens(a.path)
		if err != nil {
			return err
		}
		tokens = append(slices.Clip(tokens), t...)
	}
	m := make(map[[32]byte]Token, len(tokens))
	for _, t := range tokens {
		m[t.Hash] = t
	}
	a.tokens.Store(&m)
	a.stamp = stamp
	return nil
}

// current returns the tokens, re-reading the file when age has passed since
// the last look; a file that became unreadable keeps the tokens read before.
func (a *authenticator) current(age time.Duration) map[[32]byte]Token {
	now := time.Now().UnixNano()
	if last := a.checked.Load(); a.path != "" && now-last > int64(age) && a.checked.CompareAndSwap(last, now) {
		if err := a.reload(); err != nil {
			a.log.Warn("keeping the API tokens read before", "err", err)
		}
	}
	return *a.tokens.Load()
}

var errNoToken = errors.New("missing bearer token: send Authorization: Bearer <token> (edgeless cert token makes one)")

// check returns the HTTP status and message refusing a request with header
// Authorization authz, or 0 and nil. A nil authenticator lets everything
// through.
func (a *authenticator) check(authz string, need Role) (int, error) {
	if a == nil {
		return 0, nil
	}
	tok, ok := strings.CutPrefix(authz, "Bearer ")
	if !ok || tok == "" {
		return http.StatusUnauthorized, errNoToken
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	t, ok := a.current(time.Second)[sum]
	if !ok {
		// A token added a moment ago: look at the file sooner.
		t, ok = a.current(100 * time.Millisecond)[sum]
	}
	if !ok {
		return http.StatusUnauthorized, errors.New("unknown bearer token")
	}
	if t.Role < need {
		return http.StatusForbidden, fmt.Errorf("token %q has role %s; this needs %s", t.Name, t.Role, need)
	}
	return 0, nil
}

// guard wraps h so that it runs only for requests whose token has role need.
func (c *Con) guard(need Role, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.admit(w, r.Header.Get("Authorization"), need) {
			h(w, r)
		}
	}
}

// admit answers a request with header Authorization authz whose token lacks
// role need, and says whether it may go on.
func (c *Con) admit(w http.ResponseWriter, authz string, need Role) bool {
	status, err := c.auth.check(authz, need)
	if err == nil {
		return true
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="edgeless"`)
	}
	writeError(w, status, err.Error())
	return false
}
