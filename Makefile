# OpenShell gateway (TypeScript): build, lint, test, demo and the local Kubernetes test bed.
# `make demo` and `make test` work on a fresh clone: they install what they need.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

TIER ?= full
NPM_STAMP := node_modules/.npm-ci.stamp
BUILD_STAMP := dist/.build.stamp
SOURCES := $(shell find src -name '*.ts' 2>/dev/null) package.json tsconfig.json tsconfig.build.json
UNIT_TESTS = $(sort $(shell find test/unit -name '*.test.ts'))
ALL_TESTS = $(sort $(shell find test -name '*.test.ts' -not -path 'test/support/*'))
NODE_TEST := node --import tsx --test --test-reporter=spec --test-reporter-destination=stdout

.PHONY: help deps build lint format test test-unit demo demo-clean clean proto-check \
        cluster-up cluster-down cluster-status testbed-tools bench soak

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: $(NPM_STAMP) ## install npm dependencies (npm ci)

$(BUILD_STAMP): $(NPM_STAMP) $(SOURCES)
	npx tsc -p tsconfig.build.json
	@touch $@

build: $(BUILD_STAMP) ## compile TypeScript to dist/

lint: $(NPM_STAMP) ## type-check, eslint (type-checked rules) and prettier
	npx tsc --noEmit -p .
	npx eslint --max-warnings 0 .
	npx prettier --check --log-level warn .

format: $(NPM_STAMP) ## rewrite files with prettier
	npx prettier --write --log-level warn .

test-unit: build ## fast tests: config, rendering, validation, CLI (no cluster)
	$(NODE_TEST) $(UNIT_TESTS)

proto-check: $(NPM_STAMP) ## check that src/gen matches proto/ (buf generate into a temp dir, then diff)
	bash scripts/proto-check.sh

ACCEPTANCE_REPORTER := --test-reporter=./test/support/acceptance-reporter.mjs --test-reporter-destination=stdout

test: lint proto-check build testbed-tools ## every test: lint, unit, test bed, interop (starts the cluster as needed)
	rm -f build/test-results/acceptance.json
	$(NODE_TEST) $(ACCEPTANCE_REPORTER) $(ALL_TESTS)
	node scripts/check-acceptance.mjs

soak: build testbed-tools ## long fault runs: crash safety with 100 SIGKILLs during 1000 creates and deletes
	bash testbed/cluster.sh up full
	OPENSHELL_CRASH_KILLS=100 OPENSHELL_CRASH_OPS=1000 $(NODE_TEST) test/reliability/crash-safety.test.ts

bench: build testbed-tools ## benchmark the gateway against the raw Kubernetes API (full tier; report in build/bench/)
	bash testbed/cluster.sh up full
	node --import tsx bench/run.ts
	@echo "report: build/bench/report.md (results.json, latency.svg)"

demo: build ## run the main job: a sandbox from a private registry on a real cluster, a command in it
	bash scripts/demo.sh

demo-clean: ## stop the demo gateway and delete its namespace
	bash scripts/demo.sh clean

testbed-tools: ## build the pinned test-bed tools from the Go module proxy (cached)
	bash testbed/cluster.sh build

cluster-up: ## start the local cluster: TIER=api or TIER=full (default)
	bash testbed/cluster.sh up $(TIER)

cluster-down: ## stop the local cluster and remove its processes, mounts and interfaces
	bash testbed/cluster.sh down

cluster-status: ## show what the local cluster runs
	bash testbed/cluster.sh status

clean: ## remove build outputs (not the test-bed cache)
	rm -rf dist build
