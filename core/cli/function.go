package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/edgeless-go/edgeless/core"
	"github.com/edgeless-go/edgeless/core/spec"
	"github.com/edgeless-go/edgeless/wire"
)

const functionUsage = `create -f NAME --src FILE --runtime wasm|native|python310|custom [--memory MB] [--annotation k=v]…
  | list | delete -f NAME | prewarm -f NAME [-n INSTANCES]
  | invoke -f NAME [-p key:value]… [--params_file FILE] [--async] | poll --request ID
  | invoke cast INVOCATION_URL NODE_ID FUNCTION_ID PAYLOAD
  | build DIR|function.json [--native] [--sdk DIR]
  | push BINARY FUNCTION_TYPE | get FUNCTION_ID | download CODE_FILE_ID   (the [function_repository] directory)`

// Function runs `edgeless function <verb> [flags] args…`: standalone
// functions, created and invoked without writing a workflow.
func Function(ctx context.Context, args []string, out io.Writer) error {
	c, cfg, rest, err := setupConfig("function", functionUsage, args)
	if c == nil {
		return err
	}
	verb, rest := rest[0], rest[1:]
	switch verb {
	case "build":
		return build(rest, out)
	case "push", "get", "download":
		repo, err := openRepository(cfg.FunctionRepository)
		if err != nil {
			return fmt.Errorf("function %s: %w", verb, err)
		}
		switch {
		case verb == "push" && len(rest) == 2:
			return repo.push(rest[0], rest[1], out)
		case verb == "get" && len(rest) == 1:
			return repo.get(rest[0], out)
		case verb == "download" && len(rest) == 1:
			return repo.download(rest[0], out)
		}
		return fmt.Errorf("function %s: want push BINARY FUNCTION_TYPE, get FUNCTION_ID or download CODE_FILE_ID", verb)
	}
	fs := flag.NewFlagSet("function "+verb, flag.ContinueOnError)
	name := fs.String("f", "", "function name")
	switch verb {
	case "create":
		src := fs.String("src", "", "the function's code: a .wasm module or a native .so")
		runtime := fs.String("runtime", "wasm", "wasm, native, python310 (--annotation handler=module.function) or custom (also custom_image=IMAGE)")
		memory := fs.Int("memory", 0, "memory limit of an instance, MB (default: the node's)")
		var ann pairs
		fs.Var(&ann, "annotation", "k=v annotation, e.g. max_instances=4 (repeatable)")
		if err := parse(fs, rest, name); err != nil {
			return err
		}
		code, err := os.ReadFile(*src)
		if err != nil {
			return fmt.Errorf("function create: --src: %w", err)
		}
		annotations, err := ann.split("=")
		if err != nil {
			return fmt.Errorf("function create: --annotation: %w", err)
		}
		req := spec.FunctionCreate{Name: *name, Runtime: *runtime, Code: code, MemoryMB: *memory, Annotations: annotations}
		body, _ := json.Marshal(&req)
		if err := c.do(ctx, http.MethodPost, "/api/v1/functions", body, nil); err != nil {
			return fmt.Errorf("cannot create function %q: %w", *name, err)
		}
		fmt.Fprintf(out, "Function %s created\n", *name)
		return nil
	case "list":
		var list spec.FunctionList
		if err := c.do(ctx, http.MethodGet, "/api/v1/functions", nil, &list); err != nil {
			return err
		}
		for _, f := range list.Functions {
			fmt.Fprintf(out, "%s\t%s\n", f.Name, f.Runtime)
		}
		return nil
	case "delete":
		if err := parse(fs, rest, name); err != nil {
			return err
		}
		if err := c.do(ctx, http.MethodDelete, "/api/v1/functions/"+*name, nil, nil); err != nil {
			return fmt.Errorf("cannot delete function %q: %w", *name, err)
		}
		fmt.Fprintf(out, "Function %s deleted\n", *name)
		return nil
	case "prewarm":
		n := fs.Int("n", 1, "instances to have running")
		if err := parse(fs, rest, name); err != nil {
			return err
		}
		body, _ := json.Marshal(&spec.PrewarmRequest{Instances: *n})
		var reply spec.PrewarmReply
		if err := c.do(ctx, http.MethodPost, "/api/v1/functions/"+*name+"/prewarm", body, &reply); err != nil {
			return fmt.Errorf("cannot prewarm function %q: %w", *name, err)
		}
		fmt.Fprintf(out, "Function %s: %d instances started, %d running\n", *name, reply.Started, reply.Instances)
		return nil
	case "invoke":
		if len(rest) > 0 && rest[0] == "cast" {
			return c.castRaw(rest[1:], out)
		}
		var params pairs
		fs.Var(&params, "p", "key:value parameter (repeatable)")
		paramsFile := fs.String("params_file", "", "JSON object of parameters")
		async := fs.Bool("async", false, "return a request id at once; fetch the result with poll")
		if err := parse(fs, rest, name); err != nil {
			return err
		}
		req := spec.InvokeRequest{Params: map[string]any{}, Async: *async}
		if *paramsFile != "" {
			data, err := os.ReadFile(*paramsFile)
			if err != nil {
				return fmt.Errorf("function invoke: --params_file: %w", err)
			}
			if err := json.Unmarshal(data, &req.Params); err != nil {
				return fmt.Errorf("function invoke: --params_file %s: want a JSON object: %w", *paramsFile, err)
			}
		}
		kv, err := params.split(":")
		if err != nil {
			return fmt.Errorf("function invoke: -p: %w", err)
		}
		for k, v := range kv {
			req.Params[k] = v
		}
		body, _ := json.Marshal(&req)
		if *async {
			var acc spec.InvokeAccepted
			if err := c.do(ctx, http.MethodPost, "/api/v1/invoke/"+*name, body, &acc); err != nil {
				return err
			}
			fmt.Fprintln(out, acc.RequestID)
			return nil
		}
		reply, err := c.raw(ctx, http.MethodPost, "/api/v1/invoke/"+*name, body)
		if err != nil {
			return err
		}
		out.Write(reply)
		if len(reply) > 0 && reply[len(reply)-1] != '\n' {
			fmt.Fprintln(out)
		}
		return nil
	case "poll":
		request := fs.String("request", "", "request id from an asynchronous invoke")
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if *request == "" {
			return errors.New("function poll: --request is required")
		}
		var p spec.PollReply
		if err := c.do(ctx, http.MethodGet, "/api/v1/poll/"+*request, nil, &p); err != nil {
			return err
		}
		switch p.Status {
		case "done":
			fmt.Fprintln(out, p.Result)
		case "error":
			return fmt.Errorf("request %s failed: %s", *request, p.Error)
		default:
			fmt.Fprintln(out, p.Status)
		}
		return nil
	}
	return fmt.Errorf("function: unknown verb %q (want create, list, delete, prewarm, invoke, poll, build, push, get or download)", verb)
}

// parse parses a verb's flags and insists on -f.
func parse(fs *flag.FlagSet, args []string, name *string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		return fmt.Errorf("%s: -f NAME is required", fs.Name())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

// castRaw sends one cast straight to a node's dataplane, as EDGELESS's
// `function invoke cast` does.
func (cl *client) castRaw(args []string, out io.Writer) error {
	if len(args) != 4 {
		return errors.New("function invoke cast: want INVOCATION_URL NODE_ID FUNCTION_ID PAYLOAD")
	}
	addr, err := wire.ParseAddr(args[0])
	if err != nil {
		return fmt.Errorf("function invoke cast: %w", err)
	}
	node, err := core.ParseID(args[1])
	if err != nil {
		return fmt.Errorf("function invoke cast: node id: %w", err)
	}
	fn, err := core.ParseID(args[2])
	if err != nil {
		return fmt.Errorf("function invoke cast: function id: %w", err)
	}
	opts := wire.ClientOptions{DialTimeout: 5 * time.Second}
	if cl.cfg.CertPath != "" {
		creds, err := wire.LoadCredentials(cl.cfg.CAPath, cl.cfg.CertPath, cl.cfg.KeyPath)
		if err != nil {
			return fmt.Errorf("function invoke cast: %w", err)
		}
		opts.TLS = creds.ClientTLS(wire.Identity{Role: wire.RoleNode, ID: node.String()})
	}
	c := wire.NewClient(addr, opts)
	e := core.Event{Kind: core.KindCast, Target: core.InstanceID{Node: node, Component: fn}, Created: time.Now().UnixNano(), Payload: []byte(args[3])}
	if err := c.SendEvent(&e); err != nil {
		c.Close()
		return fmt.Errorf("function invoke cast: %w", err)
	}
	// The first frame waits for the connection: wait until it is written.
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().FramesOut == 0 && c.Stats().Lost == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	sent := c.Stats().FramesOut > 0
	c.Close()
	if !sent {
		return fmt.Errorf("function invoke cast: the event could not be sent to %s", addr)
	}
	fmt.Fprintln(out, "event casted")
	return nil
}

// pairs collects repeated k<sep>v flags.
type pairs []string

func (p *pairs) String() string     { return strings.Join(*p, ",") }
func (p *pairs) Set(v string) error { *p = append(*p, v); return nil }

func (p pairs) split(sep string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range p {
		k, v, ok := strings.Cut(kv, sep)
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want key%svalue", kv, sep)
		}
		m[k] = v
	}
	return m, nil
}
