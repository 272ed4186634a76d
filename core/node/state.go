package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/edgeless-go/edgeless/core"
)

// stateStore keeps the state functions save with sync(), one file per logical
// function, so that a re-created instance gets it back in handle_init.
type stateStore struct{ dir string }

func (s *stateStore) path(logical core.ID) string { return filepath.Join(s.dir, logical.String()) }

func (s *stateStore) load(logical core.ID) ([]byte, error) {
	b, err := os.ReadFile(s.path(logical))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read state of %s: %w", logical, err)
	}
	return b, nil
}

// save replaces the state atomically, so a crash leaves the old or the new one.
func (s *stateStore) save(logical core.ID, data []byte) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("cannot create state directory: %w", err)
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot save state of %s: %w", logical, err)
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot save state of %s: %w", logical, err)
	}
	if err := os.Rename(tmp.Name(), s.path(logical)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("cannot save state of %s: %w", logical, err)
	}
	return nil
}
