# tapgate — see README.md. Every target works on a fresh machine with Go;
# .ci/run installs the Debian packages the generate and e2e targets need.
GO            ?= go
BIN           ?= bin/tapgate
VERSION       ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT        ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS       := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOLANGCI_LINT_VERSION := v2.15.0
GOBIN         ?= $(shell $(GO) env GOPATH)/bin

.PHONY: all build test test-unit lint generate check-generated bench honesty demo fuzz e2e-deps clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tapgate

# The README's test command: unit, golden, fuzz-seed and end-to-end tests,
# with the race detector. The end-to-end tier needs etcd and a kube-apiserver
# (make e2e-deps); without them it skips, except under CI=true where it fails.
test:
	$(GO) test -race -count=1 ./...

test-unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/e2e)

lint:
	@test -x $(GOBIN)/golangci-lint && $(GOBIN)/golangci-lint version | grep -q $(patsubst v%,%,$(GOLANGCI_LINT_VERSION)) || \
		GOBIN=$(GOBIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt: run gofmt -w on the files above"; exit 1)
	$(GO) vet ./...
	$(GOBIN)/golangci-lint run ./...

# Regenerates the protobuf Go code and the policy JSON Schema.
generate:
	bash hack/generate-proto.sh
	$(GO) run ./gate/policy/cmd/genschema -o schema/gatepolicy.schema.json

# Fails when committed generated files differ from what generate writes.
check-generated:
	bash hack/check-generated.sh
	$(GO) run ./gate/policy/cmd/genschema -o - | diff -u schema/gatepolicy.schema.json - || (echo "schema is stale: run make generate"; exit 1)

bench:
	bash hack/bench.sh

# The honesty study (hack/honesty): simulated gates through the real engine
# and runner, checked against an exact computation; rewrites the honesty
# section of BENCHMARKS.md. HONESTY_FLAGS=-quick for a short try.
honesty:
	$(GO) run ./hack/honesty $(HONESTY_FLAGS)

demo: build
	$(BIN) demo

# Runs each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./gate/policy -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./gate/replay -run '^$$' -fuzz FuzzReader -fuzztime $(FUZZTIME)
	$(GO) test ./gate/tap/wire -run '^$$' -fuzz FuzzFrameReader -fuzztime $(FUZZTIME)

e2e-deps:
	bash hack/e2e-build-apiserver.sh

clean:
	rm -rf bin
