package testutil

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestAPIClient(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("Authorization"))
	}))
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	f := func(c *http.Client, want string) {
		t.Helper()
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if got, _ := io.ReadAll(resp.Body); string(got) != want {
			t.Fatalf("Authorization %q, want %q", got, want)
		}
	}
	f(APIClient(ca, "tok", time.Minute), "Bearer tok")
	f(APIClient(ca, "", time.Minute), "")
	if _, err := APIClient(nil, "tok", time.Minute).Get(srv.URL); err == nil {
		t.Fatal("a client without the CA trusted the test server")
	}
}
