package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgeless-go/edgeless/core"
)

// repository is a function repository kept in a directory, the store of
// `function push|get|download` ([function_repository] url of cli.toml).
// EDGELESS talks to an HTTP repository service; here the same verbs work on
// a directory, shared as any directory is:
//
//	<dir>/functions/<id>.json        the function's class: id, function_type,
//	                                 version, code_file_id, outputs
//	<dir>/code/<code_file_id>/<file> the code, under its content hash
type repository struct {
	dir string
}

// repoEntry is a function's class in the repository, as EDGELESS's push
// writes it.
type repoEntry struct {
	FunctionType string   `json:"function_type"`
	ID           string   `json:"id"`
	Version      string   `json:"version"`
	CodeFileID   string   `json:"code_file_id"`
	Outputs      []string `json:"outputs"`
}

func openRepository(cfg FunctionRepository) (*repository, error) {
	u := cfg.URL
	switch {
	case u == "":
		return nil, errors.New("no function repository: set [function_repository] url in cli.toml (a directory)")
	case strings.HasPrefix(u, "http://"), strings.HasPrefix(u, "https://"):
		return nil, fmt.Errorf("function repository %s: only a directory is supported (url = \"file:///path\" or a path), not an HTTP service", u)
	}
	dir := strings.TrimPrefix(u, "file://")
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("function repository: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("function repository %s: not a directory", dir)
	}
	return &repository{dir: dir}, nil
}

// validID refuses ids that would leave the repository's directories.
func validID(kind, id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, `/\`) {
		return fmt.Errorf("%s %q: want a plain name", kind, id)
	}
	return nil
}

// push stores binary as the code of function type ftype, under the binary's
// file name without extension, and prints the code_file_id.
func (r *repository) push(binary, ftype string, out io.Writer) error {
	code, err := os.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("function push: %w", err)
	}
	name := filepath.Base(binary)
	id := strings.TrimSuffix(name, filepath.Ext(name))
	if err := validID("function", id); err != nil {
		return fmt.Errorf("function push: %w", err)
	}
	sum := sha256.Sum256(code)
	codeID := hex.EncodeToString(sum[:16])
	codeDir := filepath.Join(r.dir, "code", codeID)
	if err := os.MkdirAll(codeDir, 0o755); err != nil {
		return fmt.Errorf("function push: %w", err)
	}
	if err := core.WriteFileAtomic(filepath.Join(codeDir, name), code); err != nil {
		return fmt.Errorf("function push: %w", err)
	}
	entry := repoEntry{FunctionType: ftype, ID: id, Version: "0.1", CodeFileID: codeID, Outputs: []string{"success_cb", "failure_cb"}}
	data, _ := json.MarshalIndent(&entry, "", "  ")
	if err := os.MkdirAll(filepath.Join(r.dir, "functions"), 0o755); err != nil {
		return fmt.Errorf("function push: %w", err)
	}
	if err := core.WriteFileAtomic(filepath.Join(r.dir, "functions", id+".json"), append(data, '\n')); err != nil {
		return fmt.Errorf("function push: %w", err)
	}
	fmt.Fprintf(out, "receive code_file_id {\"id\": %q}\n", codeID)
	fmt.Fprintf(out, "function %s pushed\n", id)
	return nil
}

// get prints the class of function id.
func (r *repository) get(id string, out io.Writer) error {
	if err := validID("function", id); err != nil {
		return fmt.Errorf("function get: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(r.dir, "functions", id+".json"))
	if err != nil {
		return fmt.Errorf("function get: no function %q in %s", id, r.dir)
	}
	fmt.Fprintf(out, "Successfully get function %s\n", strings.TrimSpace(string(data)))
	return nil
}

// download writes the code of codeID to the working directory under its
// pushed file name.
func (r *repository) download(codeID string, out io.Writer) error {
	if err := validID("code_file_id", codeID); err != nil {
		return fmt.Errorf("function download: %w", err)
	}
	files, _ := filepath.Glob(filepath.Join(r.dir, "code", codeID, "*"))
	if len(files) != 1 {
		return fmt.Errorf("function download: no code %q in %s", codeID, r.dir)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return fmt.Errorf("function download: %w", err)
	}
	name := filepath.Base(files[0])
	if err := os.WriteFile(name, data, 0o644); err != nil {
		return fmt.Errorf("function download: %w", err)
	}
	fmt.Fprintf(out, "filename:\n%q\nFile downloaded successfully.\n", name)
	return nil
}
