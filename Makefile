# edgeless: one binary for the controller, the orchestrator, the node and the CLI.
#
#   make run        set up, build, start inabox with the ping_pong example
#   make test       set up (toolchain, redis-server), build the functions, run the whole test suite
#   make build      build ./edgeless
#   make functions  build the example functions (functions/<name>/<name>.wasm)
#   make images     build the edgeless, edgeless-redis and container-function images (Docker, local files only)
#   make bench      micro-benchmarks and baselines (-count=5, for benchstat), scale curves
#   make profile    CPU profile of a loaded two-node chain (cpu.pprof)
#   make fuzz       run each fuzz target for FUZZTIME
#   make lint       gofmt and go vet

GO       ?= go
FUZZTIME ?= 60s
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: all deps test-deps build functions images proto run test bench profile fuzz lint clean

all: build functions

# deps installs the C toolchain for the functions.
deps:
	@bash functions/install-deps.sh

# test-deps installs what the tests run for real: redis-server (the tests
# start their own, on their own ports; they never use a running Redis) and
# promtool (Prometheus's linter, which checks every /metrics).
test-deps: deps
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
		echo "test-deps: installing$$missing with apt-get"; \
		if [ "$$(id -u)" -eq 0 ]; then run=; else run=sudo; fi; \
		$$run env DEBIAN_FRONTEND=noninteractive apt-get update && \
		$$run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o edgeless .

functions: deps
	$(MAKE) -C functions

# images builds the images of deploy/ and those of the container functions,
# their SDKs' runtime and the tests (container/images/build.sh) from local
# files and Debian packages: no registry is used. Without a Docker daemon it
# skips, unless CI=true.
images: test-deps
	@GO=$(GO) bash deploy/image/build.sh
	@GO=$(GO) bash container/images/build.sh

# proto regenerates container/guestapi from its .proto files (needs protoc
# and libprotobuf-dev from apt, protoc-gen-go and protoc-gen-go-grpc).
proto:
	cd container/guestapi && PATH="$$PATH:$$($(GO) env GOPATH)/bin" $(GO) generate .

# The example runs in run/, where its state, compiled-module cache and log
# files go. Stop it with Ctrl-C.
run: build functions
	mkdir -p run
	cd run && ../edgeless inabox -w ../examples/ping_pong/workflow.json

# The multi-host tests (deploy/) run last and alone: their containers take
# random host ports that tests picking free ports could otherwise collide with.
test: test-deps functions images
	$(GO) test -count=1 $$($(GO) list ./... | grep -v '/deploy$$')
	$(GO) test -count=1 ./deploy/
	cd functions && $(GO) test -count=1 ./...

# One package at a time (-p 1): two benchmarks sharing the two cores would
# measure each other. The baselines are a module of their own (bench/baseline).
# The scale curves are edgeless bench scenarios (the nodes one runs the
# orchestrator as a process of its own); SCALE= skips them.
BENCHCOUNT ?= 5
SCALE      ?= instances nodes workflows
bench: build functions
	$(GO) test -p 1 -run='^$$' -bench=. -benchmem -count=$(BENCHCOUNT) ./...
	cd bench/baseline && $(GO) test -run='^$$' -bench=. -benchmem -count=$(BENCHCOUNT) .
	for s in $(SCALE); do ./edgeless bench --scenario $$s --plots bench-scale || exit 1; done

# profile loads a ring of two WASM functions on two nodes in this process
# with 64 transactions in flight for 10 s, writes the CPU profile of the load
# to cpu.pprof and prints its top entries.
profile: build functions
	./edgeless bench --inabox --nodes 2 --arrival-model single --warmup 1 --duration 10 \
		--wf-type 'vector-mul-chain;bench/testdata/ring-loaded.json' --no-transaction-rows --cpuprofile cpu.pprof
	$(GO) tool pprof -top -nodecount=30 edgeless cpu.pprof

fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzDecodeEvent$$' -fuzztime=$(FUZZTIME) ./wire/
	$(GO) test -run='^$$' -fuzz='^FuzzFrames$$' -fuzztime=$(FUZZTIME) ./wire/
	$(GO) test -run='^$$' -fuzz='^FuzzParseWorkflow$$' -fuzztime=$(FUZZTIME) ./core/spec/
	$(GO) test -run='^$$' -fuzz='^FuzzParseHTTPResponse$$' -fuzztime=$(FUZZTIME) ./resources/

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

clean:
	rm -f edgeless
	$(MAKE) -C functions clean
