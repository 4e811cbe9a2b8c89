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

.PHONY: help setup system venv tools node-tools chart chart-docs lint yamllint ansible-lint changelog-lint docs-lint sanity build galaxy-import ee chart-test unit role-tests contract charts cluster-test bad-input leaks budget faults blue-green fleet drift e2e molecule test operators cluster-up cluster-down demo bench clean

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

setup: system venv $(BIN)/.stamp node-tools ## Install everything the tests need: system packages, .venv*/, bin/ and tools/readme-generator/ (pinned, stamped: a rerun is cheap)

system: ## System packages the tests need (hack/ci-deps.sh; checks first, installs only what is missing)
	hack/ci-deps.sh

# .venv from requirements.txt; .venv-<name> from each requirements-<name>.txt (tools whose pins must not share .venv).
VENVS := $(VENV)/.stamp $(patsubst requirements-%.txt,$(ROOT)/.venv-%/.stamp,$(wildcard requirements-*.txt))
venv: $(VENVS)
$(VENV)/.stamp: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@
$(ROOT)/.venv-%/.stamp: requirements-%.txt
	python3 -m venv $(ROOT)/.venv-$*
	$(ROOT)/.venv-$*/bin/pip install --quiet -r $<
	touch $@

# @bitnami/readme-generator-for-helm, exact version in tools/readme-generator/package-lock.json.
NODE_TOOLS := tools/readme-generator
node-tools: $(NODE_TOOLS)/node_modules/.stamp
$(NODE_TOOLS)/node_modules/.stamp: $(NODE_TOOLS)/package.json $(NODE_TOOLS)/package-lock.json
	npm ci --prefix $(NODE_TOOLS) --no-audit --no-fund
	touch $@

CHART := charts/tensafe
chart-docs: node-tools ## Regenerate the chart README's Parameters table from the @param lines of its values.yaml
	$(NODE_TOOLS)/node_modules/.bin/readme-generator -v $(CHART)/values.yaml -r $(CHART)/README.md

tools: ## Build helm, kubectl, Kubernetes, etcd, kwok, promtool and prometheus from the Go module proxy into bin/
	hack/build-tools.sh

# The operators of the hermetic cluster (tools/keda, tools/prometheus-operator, tools/cert-manager,
# tools/external-secrets): built only by `make operators`.
OPERATORS ?= keda prometheus-operator cert-manager external-secrets
operators: ## Build the hermetic cluster's operators (KEDA, Prometheus Operator, cert-manager, External Secrets) into bin/; not part of setup
	BUILD_TOOLS_ONLY="$(OPERATORS)" hack/build-tools.sh

# setup's view of the tools: skipped while nothing under tools/ changed since every tool was built (the operators'
# pins are not setup's business).
$(BIN)/.stamp: hack/build-tools.sh $(shell find tools -type f $(foreach o,$(OPERATORS),-not -path 'tools/$(o)/*'))
	hack/build-tools.sh
	@if [ -z "$${BUILD_TOOLS_ONLY:-}" ]; then touch $@; fi

chart: ## Package charts/tensafe into the app role's files/ (what the collection ships; gitignored, reproducible)
	$(VENV)/bin/python hack/package-chart.py

lint: yamllint ansible-lint changelog-lint docs-lint ## yamllint, ansible-lint --profile production, antsibull changelog and docs lint

yamllint:
	yamllint --strict .

ansible-lint:
	ansible-lint --profile production

changelog-lint:
	cd $(COLLECTION) && antsibull-changelog lint

docs-lint:
	$(ROOT)/.venv-galaxy/bin/antsibull-docs lint-collection-docs --plugin-docs $(COLLECTION)

sanity: ## ansible-test sanity on the collection
	hack/sanity.sh

build: ## Build the collection tarball, install it into a temp path and read a role's docs from it
	hack/check-build.sh

galaxy-import: build ## galaxy-importer (what Galaxy runs on every upload) on the tarball: fails on any error or warning
	hack/galaxy-import.sh

ee: ## ansible-builder create: the execution environment's build context in build/ee (images cannot be built here)
	$(ROOT)/.venv-galaxy/bin/ansible-builder create --file execution-environment.yml --context build/ee --output-filename Containerfile

chart-test: ## helm lint --strict and the rendering/validation/policy tests of the chart
	pytest -q tests/chart

unit: ## Unit tests: argument_specs vs defaults, filters, inventories
	pytest -q tests/unit

role-tests: ## Per-role pytest suites: promtool rules and dashboard, datastores external mode, vault
	pytest -q $(wildcard tests/observability tests/datastores tests/vault)

contract: chart ## What every role hands to Helm (dev, prod, local), rendered with the real upstream charts of the chart mirror; unknown keys named
	pytest -q tests/contract

# For machines with internet access: CI here uses the mirror ../shared/charts (tests/chart_mirror.py).
CHART_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tensafe-k8s-charts
charts: ## helm pull every pinned upstream chart into $(CHART_CACHE), the chart mirror the tests use when ../shared/charts is absent
	python3 hack/chart-sources.py --pull $(CHART_CACHE)

cluster-test: ## The hermetic cluster's own tests: the cluster network (APIServices, webhooks, refusals) on the real apiserver
	pytest -q tests/cluster
	@# The operator tests leave KEDA, the Prometheus Operator and the real charts' CRDs behind: later suites start afresh.
	hack/cluster-down.sh --purge

bad-input: chart operators ## The playbooks against broken inventories: each fails before any cluster call
	pytest -q tests/bad_input

leaks: chart operators ## site.yml at -vvv (converge, changing run, --check --diff) prints no secret, on the hermetic cluster
	pytest -q -s tests/leaks

faults: chart operators ## Faults on the hermetic cluster: stuck releases, the converge lock, the apiserver stopped mid-rollout, Vault sealed/unreachable, a CRD deleted, GPUs taken
	pytest -q tests/faults

blue-green: chart ## Blue-green on the hermetic cluster: helm test, the gate (readiness, error rate), switch-back, the GPU fit of both colours
	pytest -q tests/blue_green

fleet: chart ## One inventory, two hermetic clusters: site.yml converges both, reruns changed=0, --limit selects one, a bad value in one stops both before any write
	pytest -q tests/fleet

budget: chart operators ## A no-op rerun of site.yml within budget: <= 60 tasks not skipped, no API read made twice (hermetic cluster)
	pytest -q -s tests/budget

drift: chart operators ## playbooks/drift.yml on the hermetic cluster: no drift after a converge, changes out of band reported (secrets by hash), an HPA scale-out not, nothing written
	pytest -q tests/drift

e2e: chart operators $(BIN)/.stamp ## The stack on the hermetic cluster with a real Prometheus (bin/prometheus): alerts fire, KEDA scales on it within the GPUs
	pytest -q -s tests/e2e
	@# The stack's releases stay behind: later suites start afresh.
	hack/cluster-down.sh --purge

molecule: chart operators ## Every molecule scenario on the hermetic cluster (MOLECULE_CLUSTER=kind for kind)
	hack/molecule-all.sh

test: setup operators lint sanity build galaxy-import chart-test unit role-tests contract cluster-test bad-input leaks budget faults blue-green fleet drift e2e molecule ## Everything CI runs (installs what it needs first)

cluster-up: operators ## Start the hermetic test cluster (.cluster/kubeconfig)
	hack/cluster-up.sh

cluster-down: ## Stop the hermetic test cluster
	hack/cluster-down.sh

demo: setup chart operators ## Bring up a local cluster and deploy the stack with inventories/local
	hack/demo.sh

bench: chart operators ## site.yml converge and rerun against plain helm, on the hermetic cluster
	.venv/bin/python hack/bench.py

clean: ## Remove build outputs (keeps .venv and bin)
	rm -rf build $(COLLECTION)/tests/output
