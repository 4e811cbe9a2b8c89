# tensafe.k8s — every entry point a developer or CI needs. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT       := $(CURDIR)
VENV       := $(ROOT)/.venv
BIN        := $(ROOT)/bin
COLLECTION := collections/ansible_collections/tensafe/k8s
export PATH := $(BIN):$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export HELM := $(BIN)/helm

.PHONY: help setup venv tools lint yamllint ansible-lint sanity build chart-test unit role-tests bad-input leaks molecule test cluster-up cluster-down demo bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

setup: venv tools ## Install every tool the tests need into .venv/ and bin/ (pinned, cached)

venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt $(wildcard requirements-scan.txt)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.txt
	@if [ -f requirements-scan.txt ]; then python3 -m venv $(ROOT)/.venv-scan && $(ROOT)/.venv-scan/bin/pip install --quiet -r requirements-scan.txt; fi
	touch $@

tools: ## Build helm, kubectl, Kubernetes, etcd, kwok and promtool from the Go module proxy into bin/
	hack/build-tools.sh

lint: yamllint ansible-lint ## yamllint and ansible-lint --profile production

yamllint:
	yamllint --strict .

ansible-lint:
	ansible-lint --profile production

sanity: ## ansible-test sanity on the collection
	hack/sanity.sh

build: ## Build the collection tarball, install it into a temp path and read a role's docs from it
	hack/check-build.sh

chart-test: ## helm lint --strict and the rendering/validation/policy tests of the chart
	pytest -q tests/chart

unit: ## Unit tests: argument_specs vs defaults, filters, inventories
	pytest -q tests/unit

role-tests: ## Per-role pytest suites: promtool rules and dashboard, datastores external mode, vault
	pytest -q $(wildcard tests/observability tests/datastores tests/vault)

bad-input: ## The playbooks against broken inventories: each fails before any cluster call
	pytest -q tests/bad_input

leaks: ## site.yml at -vvv (converge, changing run, --check --diff) prints no secret, on the hermetic cluster
	pytest -q -s tests/leaks

molecule: ## Every molecule scenario on the hermetic cluster (MOLECULE_CLUSTER=kind for kind)
	hack/molecule-all.sh

test: lint sanity build chart-test unit role-tests bad-input leaks molecule ## Everything CI runs

cluster-up: ## Start the hermetic test cluster (.cluster/kubeconfig)
	hack/cluster-up.sh

cluster-down: ## Stop the hermetic test cluster
	hack/cluster-down.sh

demo: setup ## Bring up a local cluster and deploy the stack with inventories/local
	hack/ci-deps.sh
	hack/demo.sh

bench: ## site.yml converge and rerun against plain helm, on the hermetic cluster
	.venv/bin/python hack/bench.py

clean: ## Remove build outputs (keeps .venv and bin)
	rm -rf build $(COLLECTION)/tests/output
