package resources

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	// The SQLite driver: the reference SQLite through cgo, which the node
	// needs anyway for wasmtime.
	"github.com/mattn/go-sqlite3"

	"github.com/edgeless-go/edgeless/core"
)

// sqlxTimeout bounds one statement: the instance handles events one at a
// time, and a locked database must not stall its mailbox for long.
const sqlxTimeout = 5 * time.Second

// Sqlx is EDGELESS's sqlx provider for SQLite. Each instance opens the
// database of its url (sqlite://FILE, created if missing, FILE relative to
// the node's working directory) and creates table
// WorkflowState(id VARCHAR(255) PRIMARY KEY, metadata JSONB NOT NULL). The
// payload is a statement whose first parameter ($1) is bound to the
// workflow id:
//   - one containing SELECT replies with its first row as JSON,
//     {"id":…,"metadata":…} (other columns: an object of all of them), or
//     with the error's text when there is no row;
//   - one containing INSERT, UPDATE or DELETE replies
//     "rows_affected: N, last_insert_rowid: M.";
//   - a failing statement replies with the error's text, and anything else
//     replies Err, as in EDGELESS.
//
// Casts run the statement and reply nothing.
type Sqlx struct {
	log *slog.Logger
}

// NewSqlx returns the sqlx provider.
func NewSqlx(log *slog.Logger) *Sqlx {
	if log == nil {
		log = slog.Default()
	}
	return &Sqlx{log: log.With("provider", "sqlx")}
}

// Spec implements Provider.
func (p *Sqlx) Spec() Spec {
	return Spec{
		ClassType: "sqlx",
		Version:   "1.1",
		Description: "Runs the SQL statement of each event on a SQLite database, with $1 bound to the workflow id; " +
			"a SELECT replies with its first row as JSON, an INSERT, UPDATE or DELETE with the rows affected and the last row id.",
		Outputs:        []string{},
		Configurations: map[string]string{"url": "the database, sqlite://FILE (created if missing; relative to the node's working directory)"},
	}
}

// sqliteDSN turns EDGELESS's sqlite:// URL into the driver's file name.
func sqliteDSN(url string) (string, error) {
	file, ok := strings.CutPrefix(url, "sqlite://")
	if !ok {
		file, ok = strings.CutPrefix(url, "sqlite:")
	}
	if !ok || file == "" || strings.HasPrefix(file, "?") {
		return "", &ConfigError{Class: "sqlx", Key: "url", Msg: fmt.Sprintf("want sqlite://FILE (only SQLite is offered), got %q", url)}
	}
	path, query, _ := strings.Cut(file, "?")
	if query != "" {
		query = "&" + query
	}
	// Instances on one node may share the file: wait for its lock a while
	// rather than fail at once.
	return "file:" + path + "?_busy_timeout=5000" + query, nil
}

// Start implements Provider.
func (p *Sqlx) Start(cfg StartConfig) (Instance, error) {
	dsn, err := sqliteDSN(cfg.Configurations["url"])
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("resource sqlx: cannot open %s: %w", cfg.Configurations["url"], err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sqlxTimeout)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS WorkflowState (id VARCHAR(255) PRIMARY KEY, metadata JSONB NOT NULL)"); err != nil {
		db.Close()
		return nil, fmt.Errorf("resource sqlx: cannot create table WorkflowState in %s: %w", cfg.Configurations["url"], err)
	}
	return &sqlxInstance{
		log: p.log.With("instance", cfg.Self.Component.String()), db: db, workflow: cfg.Workflow.String(),
		fail: core.Throttle{Every: 10 * time.Second},
	}, nil
}

type sqlxInstance struct {
	log      *slog.Logger
	db       *sql.DB
	workflow string
	fail     core.Throttle
}

func (i *sqlxInstance) Cast(src core.InstanceID, payload []byte) error {
	if ret, reply := i.run(payload); ret == core.CallErr || bytes.HasPrefix(reply, []byte(errPrefix)) {
		if ok, n := i.fail.Allow(); ok {
			i.log.Warn("sqlx statement of a cast failed", "statement", string(payload), "reply", string(reply), "failures", n)
		}
	}
	return nil
}

func (i *sqlxInstance) Call(src core.InstanceID, payload []byte) (core.CallRet, []byte, error) {
	ret, reply := i.run(payload)
	return ret, reply, nil
}

// errPrefix starts the text of a database error, as sqlx words it.
const errPrefix = "error returned from database: "

// errNoRows is sqlx's text for a SELECT that found nothing.
const errNoRows = "no rows returned by a query that expected to return at least one row"

// run executes the statement and returns EDGELESS's reply to it.
func (i *sqlxInstance) run(payload []byte) (core.CallRet, []byte) {
	stmt := string(payload)
	ctx, cancel := context.WithTimeout(context.Background(), sqlxTimeout)
	defer cancel()
	switch {
	case strings.Contains(stmt, "SELECT"):
		reply, err := i.selectOne(ctx, stmt)
		if err != nil {
			return core.CallReply, []byte(dbError(err))
		}
		return core.CallReply, reply
	case strings.Contains(stmt, "INSERT"), strings.Contains(stmt, "UPDATE"), strings.Contains(stmt, "DELETE"):
		res, err := withWorkflow(stmt, i.workflow, func(args ...any) (sql.Result, error) { return i.db.ExecContext(ctx, stmt, args...) })
		if err != nil {
			return core.CallReply, []byte(dbError(err))
		}
		n, _ := res.RowsAffected()
		id, _ := res.LastInsertId()
		return core.CallReply, fmt.Appendf(nil, "rows_affected: %d, last_insert_rowid: %d.", n, id)
	}
	return core.CallErr, nil
}

// withWorkflow runs f with the workflow id as the statement's first
// parameter, or with none when the statement has no parameter (SQLite
// refuses an argument too many; sqlx binds it regardless).
func withWorkflow[T any](stmt, workflow string, f func(args ...any) (T, error)) (T, error) {
	v, err := f(workflow)
	if err != nil && strings.Contains(err.Error(), "expected 0 arguments") {
		return f()
	}
	return v, err
}

// selectOne returns the first row of a query as JSON: EDGELESS's
// {"id":…,"metadata":…} when the row has those columns, metadata decoded
// from its JSON text.
func (i *sqlxInstance) selectOne(ctx context.Context, stmt string) ([]byte, error) {
	rows, err := withWorkflow(stmt, i.workflow, func(args ...any) (*sql.Rows, error) { return i.db.QueryContext(ctx, stmt, args...) })
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New(errNoRows)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for k := range vals {
		ptrs[k] = &vals[k]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	row := make(map[string]any, len(cols))
	for k, c := range cols {
		if b, ok := vals[k].([]byte); ok {
			vals[k] = string(b)
		}
		row[c] = vals[k]
	}
	if text, ok := row["metadata"].(string); ok {
		d := json.NewDecoder(strings.NewReader(text))
		d.UseNumber() // 42.0 stays 42.0, as serde_json writes it back
		var md any
		if err := d.Decode(&md); err != nil {
			return nil, fmt.Errorf("error occurred while decoding column metadata: %w", err)
		}
		row["metadata"] = md
	}
	if _, ok := row["id"]; ok {
		if md, ok := row["metadata"]; ok {
			return json.Marshal(struct {
				ID       any `json:"id"`
				Metadata any `json:"metadata"`
			}{row["id"], md})
		}
	}
	return json.Marshal(row)
}

// dbError words err as sqlx does: a database error is prefixed, others are
// as they are.
func dbError(err error) string {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("%s(code: %d) %s", errPrefix, se.Code, se.Error())
	}
	return err.Error()
}

func (i *sqlxInstance) Close() error { return i.db.Close() }
