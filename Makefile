# Berth. `make demo` shows it working on a local control plane; `make test`
# runs every test. Both install what they need first.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Everything built from pinned Go modules lands in one cache, shared by the
# tests (tests/controlplane finds it with the same rule).
CACHE ?= $(or $(BERTH_CACHE),$(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME)/berth,$(HOME)/.cache/berth))
export BERTH_CACHE := $(CACHE)

# Versions of built tools are pinned in tools/go.mod only (helm in
# tools/helm/go.mod, apart so it cannot move the Kubernetes build).
tool_version = $(shell awk '{ if ($$1 == "require") { $$1 = ""; $$0 = $$0 } } $$1 == "$(1)" && $$2 ~ /^v/ { print $$2; exit }' $(or $(2),tools/go.mod))
K8S_VERSION := $(call tool_version,k8s.io/kubernetes)
CNI_VERSION := $(call tool_version,github.com/containernetworking/plugins)
CTOOLS_VERSION := $(call tool_version,sigs.k8s.io/controller-tools)
HELM_VERSION := $(call tool_version,helm.sh/helm/v3,tools/helm/go.mod)

K8S_BIN := $(CACHE)/k8s-$(K8S_VERSION)
CNI_BIN := $(CACHE)/cni-$(CNI_VERSION)
CONTROLLER_GEN := $(CACHE)/controller-gen-$(CTOOLS_VERSION)/controller-gen
HELM := $(CACHE)/helm-$(HELM_VERSION)/helm

K8S_CMDS := kube-apiserver kube-controller-manager kube-scheduler kubectl
CNI_PLUGINS := main/macvlan main/ipvlan main/bridge main/ptp main/host-device main/vlan main/loopback ipam/host-local ipam/static meta/tuning meta/sbr

# Debian packages the tests and the demo use: etcd for the control plane,
# iproute2/ping/arping for the network-namespace tests, the reference CNI
# plugins for spec versions below 1.1.0.
APT_PACKAGES := etcd-server containernetworking-plugins iproute2 iputils-ping arping

GO_TEST_FLAGS ?=
TEST_TIMEOUT ?= 40m

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Install the Debian packages the tests need (as root).
	@missing=""; for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q $$missing >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null; }; \
	fi

.PHONY: bins
bins: $(addprefix $(K8S_BIN)/,$(K8S_CMDS)) $(CNI_BIN)/.built $(CONTROLLER_GEN) $(HELM) ## Build the pinned Kubernetes binaries, CNI plugins, controller-gen and helm into the cache.

# One go build for the four commands shares the compile of k8s.io/kubernetes.
$(addprefix $(K8S_BIN)/,$(K8S_CMDS)) &: tools/go.mod tools/go.sum
	@echo "building Kubernetes $(K8S_VERSION) into $(K8S_BIN) (about 8 minutes the first time)"
	@mkdir -p $(K8S_BIN)
	cd tools && go build -trimpath -ldflags='-s -w' -o $(K8S_BIN)/ $(addprefix k8s.io/kubernetes/cmd/,$(K8S_CMDS))

$(CNI_BIN)/.built: tools/go.mod tools/go.sum
	@mkdir -p $(CNI_BIN)
	cd tools && go build -trimpath -o $(CNI_BIN)/ $(addprefix github.com/containernetworking/plugins/plugins/,$(CNI_PLUGINS))
	@touch $@

$(CONTROLLER_GEN): tools/go.mod tools/go.sum
	@mkdir -p $(dir $@)
	cd tools && go build -trimpath -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(HELM): tools/helm/go.mod tools/helm/go.sum
	@mkdir -p $(dir $@)
	cd tools/helm && go build -trimpath -ldflags='-s -w -X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)' -o $@ helm.sh/helm/v3/cmd/helm

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Regenerate deepcopy functions and CRD manifests.
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/v1alpha1/... output:crd:dir=manifests/crds
	@# Multus owns this CRD; Berth ships it for clusters and tests without Multus.
	$(CONTROLLER_GEN) crd paths=./api/nad/... output:crd:dir=manifests/multus
	@# Helm cannot reach files outside the chart: it carries copies.
	cp manifests/crds/*.yaml manifests/multus/*.yaml manifests/helm/berth/crds/

.PHONY: build
build: ## Build Berth's binaries into bin/.
	@mkdir -p bin
	@if compgen -G 'cmd/*/main.go' >/dev/null; then go build -o bin/ ./cmd/...; fi

.PHONY: vet
vet: ## gofmt and go vet.
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './tools/*')); \
	if [ -n "$$bad" ]; then echo "gofmt would change: $$bad"; exit 1; fi
	go vet ./...

.PHONY: test
test: deps bins vet build ## Run every test: unit, Rego, control plane, network namespaces.
	@# The report lists per package how many tests ran, passed, skipped
	@# (with the reason) and failed, with the output of every failure.
	go test -json -count=1 -timeout $(TEST_TIMEOUT) $(GO_TEST_FLAGS) ./... | go run ./tests/testreport

.PHONY: bench
bench: deps bins build ## Run the benchmarks (docs/benchmarks.md says how to read them).
	go test -run '^$$' -bench . -benchmem -count 5 -timeout 60m ./...

DEMO_DIR ?= $(or $(TMPDIR),/tmp)/berth-demo

.PHONY: demo
demo: deps bins build ## Run Berth on a local control plane and show what pods get (KEEP=1 leaves it running).
	go run ./tests/demo -dir $(DEMO_DIR) $(if $(filter 1 true yes,$(KEEP)),-keep,)

.PHONY: demo-down
demo-down: ## Stop what `make demo KEEP=1` left running.
	go run ./tests/demo -dir $(DEMO_DIR) -down

.PHONY: clean
clean: ## Remove bin/ (the cache stays; delete $(CACHE) to rebuild tools).
	rm -rf bin
