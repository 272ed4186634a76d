package core

import (
	"errors"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces the file name with data so that a crash leaves
// either the old content or the new, never a mix: it writes a temporary file
// in the same directory, syncs it and renames it over name. The new file is
// readable and writable by its owner only (mode 0600).
func WriteFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
