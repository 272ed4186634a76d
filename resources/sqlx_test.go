package resources

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeless-go/edgeless/core"
)

// TestSqlx runs EDGELESS's sqlx_test statements on a real SQLite file and
// checks the replies word for word.
func TestSqlx(t *testing.T) {
	db := filepath.Join(t.TempDir(), "sqlite.db")
	wf := core.NewID()
	p := NewSqlx(nil)
	start := func() Instance {
		t.Helper()
		i, err := p.Start(StartConfig{Workflow: wf, Configurations: map[string]string{"url": "sqlite://" + db}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { i.Close() })
		return i
	}
	i := start()
	f := func(stmt string, wantRet core.CallRet, want string) {
		t.Helper()
		ret, reply, err := i.Call(core.InstanceID{}, []byte(stmt))
		if err != nil || ret != wantRet || !strings.HasPrefix(string(reply), want) {
			t.Fatalf("%s: %v %q %v, want %v %q", stmt, ret, reply, err, wantRet, want)
		}
	}
	f(`SELECT id, metadata FROM WorkflowState WHERE id=$1`, core.CallReply, "no rows returned by a query that expected to return at least one row")
	f(`INSERT INTO WorkflowState (id, metadata) Values($1, '{"foo":42.0,"bar":"initial"}')`, core.CallReply, "rows_affected: 1, last_insert_rowid: 1.")
	f(`SELECT id, metadata FROM WorkflowState WHERE id=$1`, core.CallReply, `{"id":"`+wf.String()+`","metadata":{"bar":"initial","foo":42.0}}`)
	f(`UPDATE WorkflowState SET metadata='{"foo":7.5,"bar":"subsequent"}'  WHERE id = $1`, core.CallReply, "rows_affected: 1, last_insert_rowid: 1.")
	// A second instance of the same workflow sees the same row.
	if _, reply, _ := start().Call(core.InstanceID{}, []byte(`SELECT id, metadata FROM WorkflowState WHERE id=$1`)); !strings.Contains(string(reply), `"foo":7.5`) {
		t.Fatalf("second instance reads %q", reply)
	}
	f(`INSERT INTO WorkflowState (id, metadata) Values($1, '{}')`, core.CallReply, "error returned from database: (code: 19) UNIQUE constraint failed")
	f(`SELECT count(*) AS n FROM WorkflowState`, core.CallReply, `{"n":1}`)
	f(`DELETE FROM WorkflowState WHERE id=$1`, core.CallReply, "rows_affected: 1, last_insert_rowid: 1.")
	f(`SELECT * FROM nowhere WHERE id=$1`, core.CallReply, "error returned from database: (code: 1) no such table: nowhere")
	f(`DROP TABLE WorkflowState`, core.CallErr, "")

	for _, url := range []string{"", "postgres://db/x", "sqlite://"} {
		if _, err := p.Start(StartConfig{Configurations: map[string]string{"url": url}}); err == nil || !strings.Contains(err.Error(), `resource sqlx: configuration "url"`) {
			t.Errorf("url %q: err = %v, want a configuration error", url, err)
		}
	}
}
