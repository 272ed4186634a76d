package spec_test

import (
	"fmt"
	"os"

	"github.com/edgeless-go/edgeless/core/spec"
)

func ExampleParseWorkflow() {
	_, err := spec.ParseWorkflow("workflow.json", []byte(`{
  "functions": [
    {"name": "f", "class_specification": {"id": "f", "version": "0.1"}}
  ],
  "resources": []
}`))
	fmt.Println(err)
	// Output: workflow.json:3:42: functions[0].class_specification.function_type: missing required field
}

func ExampleWorkflow_Validate() {
	w, err := spec.ParseWorkflow("workflow.json", []byte(`{
  "functions": [
    {"name": "f", "class_specification": {"id": "f", "function_type": "RUST_WASM", "version": "0.1", "code": "f.wasm"},
     "output_mapping": {"out": "g"}, "annotations": {"tee": "yes"}}
  ],
  "resources": [{"name": "f", "class_type": "file-log"}]
}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(w.Validate())
	// Output:
	// workflow.json: resources[0].name: duplicate name "f" (also at functions[0].name)
	// workflow.json: functions[0].output_mapping.out: unknown target "g": not a function or resource of this workflow
	// workflow.json: functions[0].annotations.tee: bad value "yes": want "required" or "not-required"
}

func ExampleWriteTemplate() {
	type General struct {
		DomainID   string `toml:"domain_id" comment:"Name of the orchestration domain."`
		RefreshSec int    `toml:"subscription_refresh_interval_sec" comment:"Seconds between subscription refreshes."`
	}
	type Config struct {
		General General  `toml:"general"`
		Labels  []string `toml:"labels" comment:"Labels offered for placement."`
	}
	cfg := Config{General: General{DomainID: "domain-7000", RefreshSec: 2}}
	if err := spec.WriteTemplate(os.Stdout, &cfg); err != nil {
		panic(err)
	}
	// Output:
	// # Labels offered for placement.
	// # labels = []
	//
	// [general]
	// # Name of the orchestration domain.
	// domain_id = "domain-7000"
	// # Seconds between subscription refreshes.
	// subscription_refresh_interval_sec = 2
}
