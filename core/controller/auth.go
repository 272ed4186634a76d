package controller

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
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

// authenticator checks bearer tokens. Its map is built once and only read.
type authenticator struct {
	tokens map[[32]byte]Token // nil: authentication is off
}

var errNoToken = errors.New("missing bearer token: send Authorization: Bearer <token> (edgeless cert token makes one)")

// check returns the token of r, or the HTTP status and message refusing it.
func (a *authenticator) check(r *http.Request, need Role) (int, error) {
	if a.tokens == nil {
		return 0, nil
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return http.StatusUnauthorized, errNoToken
	}
	t, ok := a.tokens[sha256.Sum256([]byte(strings.TrimSpace(tok)))]
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
		if status, err := c.auth.check(r, need); err != nil {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="edgeless"`)
			}
			writeError(w, status, err.Error())
			return
		}
		h(w, r)
	}
}
