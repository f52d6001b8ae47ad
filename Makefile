# ShopFlow: `make run` starts everything, `make test` checks everything.
# Every install step lives here, so a fresh machine needs only Rust, Node.js/npm and apt.

SHELL := /bin/bash
CARGO ?= cargo
NPM_STAMP := node_modules/.shopflow-installed

.PHONY: run test bench build deps fmt fmt-check lint clean

## run: install what is missing, build, start restate-server + ShopFlow with seed data
run: build
	./target/release/shopflow

## build: release binary
build: deps
	$(CARGO) build --release

## deps: npm packages (restate-server) pinned by package-lock.json
deps: $(NPM_STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

## test: formatting, lints, unit tests, integration tests against a real restate-server
test: deps fmt-check lint
	$(CARGO) test

## bench: API latency and whole-order wall time against the real stack (release build)
bench: deps
	$(CARGO) bench --bench lifecycle

fmt:
	$(CARGO) fmt

fmt-check:
	$(CARGO) fmt --check

lint:
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf node_modules data
