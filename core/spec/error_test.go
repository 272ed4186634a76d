package spec

import (
	"errors"
	"io/fs"
	"testing"
)

func TestErrorText(t *testing.T) {
	f := func(e *Error, want string) {
		t.Helper()
		if got := e.Error(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	f(&Error{File: "wf.json", Path: "functions[1].name", Line: 3, Col: 7, Msg: "empty name"}, "wf.json:3:7: functions[1].name: empty name")
	f(&Error{File: "wf.json", Path: "functions[1].name", Msg: "empty name"}, "wf.json: functions[1].name: empty name")
	f(&Error{File: "wf.json", Line: 2, Msg: "bad"}, "wf.json:2: bad")
	f(&Error{Line: 2, Col: 1, Msg: "bad"}, "2:1: bad")
	f(&Error{Path: "tee", Msg: "bad value"}, "tee: bad value")
	f(&Error{Msg: "bad"}, "bad")

	if err := (&Error{Msg: "x", Err: fs.ErrNotExist}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Unwrap does not reach the underlying error")
	}
}

func TestPosition(t *testing.T) {
	f := func(data string, off int64, wantLine, wantCol int) {
		t.Helper()
		line, col := position([]byte(data), off)
		if line != wantLine || col != wantCol {
			t.Fatalf("position(%q, %d) = %d:%d, want %d:%d", data, off, line, col, wantLine, wantCol)
		}
	}
	f("", 0, 1, 1)
	f("abc", 2, 1, 3)
	f("a\nbc", 2, 2, 1)
	f("a\nbc", 3, 2, 2)
	f("a\n", 2, 2, 1)
	f("ab", 99, 1, 3)
	f("ab", -1, 1, 1)
}
