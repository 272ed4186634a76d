package core

import "testing"

func TestIDRoundTrip(t *testing.T) {
	f := func(s string, wantErr bool) {
		t.Helper()
		id, err := ParseID(s)
		if (err != nil) != wantErr {
			t.Fatalf("ParseID(%q) error = %v, want error %v", s, err, wantErr)
		}
		if err == nil && id.String() != s {
			t.Fatalf("ParseID(%q).String() = %q", s, id.String())
		}
	}
	f("6ba7b810-9dad-11d1-80b4-00c04fd430c8", false)
	f("00000000-0000-0000-0000-000000000000", false)
	f("6ba7b810-9dad-11d1-80b4-00c04fd430c", true)
	f("6ba7b810x9dad-11d1-80b4-00c04fd430c8", true)
	f("zba7b810-9dad-11d1-80b4-00c04fd430c8", true)
	f("", true)
}

func TestNewIDIsV4(t *testing.T) {
	a, b := NewID(), NewID()
	if a == b {
		t.Fatal("two NewID calls returned the same id")
	}
	if a[6]>>4 != 4 || a[8]>>6 != 2 {
		t.Fatalf("NewID() = %s is not a version 4 variant 1 UUID", a)
	}
}
