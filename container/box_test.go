package container

import (
	"archive/tar"
	"bytes"
	"io"
	"slices"
	"testing"
)

// TestCodeArchive: code lands under code/, whole (the trailer is written),
// and what could leave code/ or point elsewhere is dropped.
func TestCodeArchive(t *testing.T) {
	f := func(name string, code []byte, want []string) {
		t.Helper()
		out, err := codeArchive(code, "m.py")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := tar.NewReader(bytes.NewReader(out))
		var got []string
		for {
			h, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: bad archive: %v", name, err)
			}
			got = append(got, h.Name)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: entries %q, want %q", name, got, want)
		}
	}
	f("source file", []byte("x = 1\n"), []string{"code/", "code/m.py"})
	var in bytes.Buffer
	w := tar.NewWriter(&in)
	for _, h := range []*tar.Header{
		{Name: "./pkg/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "pkg/a.py", Typeflag: tar.TypeReg, Mode: 0o600, Size: 1},
		{Name: "../evil.py", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
		{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		{Name: "/abs.py", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1},
	} {
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			w.Write([]byte("x"))
		}
	}
	w.Close()
	f("archive", in.Bytes(), []string{"code/", "code/pkg/", "code/pkg/a.py", "code/abs.py"})
}
