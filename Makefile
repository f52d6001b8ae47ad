# ShopFlow: `make run` starts everything, `make test` checks everything.
# Every install step lives here, so a fresh machine needs only Rust, Node.js/npm and apt.

SHELL := /bin/bash
CARGO ?= cargo
NPM_STAMP := node_modules/.shopflow-installed
# Installing packages needs root; use sudo when we are not.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The browser tests drive Debian's Chromium (never a downloaded one); the emoji font
# lets screenshots show the workflow checklist's icons.
BROWSER_PACKAGES := chromium fonts-noto-color-emoji

.PHONY: run test test-postgres postgres syslibs e2e-run cluster cluster-down cluster-deps cluster-test e2e browser loadgen bench bench-smoke chaos soak build deps fmt fmt-check lint clean

## run: install what is missing, build, start restate-server + ShopFlow with seed data,
## in demo mode (anyone may act as any user; unset it for real sign-in, see README)
run: build
	SHOPFLOW_TRUST_USER_HEADER=$${SHOPFLOW_TRUST_USER_HEADER:-true} ./target/release/shopflow

## build: release binary
build: deps
	$(CARGO) build --release

## deps: npm packages (restate-server, datastar, playwright-core) pinned by package-lock.json,
## and the system libraries the binary links: SQLite, and OpenSSL for webhooks to https
## URLs (Debian's libsqlite3-dev and libssl-dev, installed when missing)
deps: $(NPM_STAMP) syslibs

syslibs:
	@{ pkg-config --exists sqlite3 && pkg-config --exists openssl; } 2>/dev/null || { \
	  echo "installing libsqlite3-dev, libssl-dev and pkg-config with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libsqlite3-dev libssl-dev pkg-config ca-certificates; }

$(NPM_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

## test: formatting, lints, unit and integration tests against a real restate-server,
## then the browser tests
## (they use the `shopflow` binary that `cargo test` has just built). Clippy lints the
## project's own code as `cargo test` compiles it (clippy-driver as the wrapper of the
## workspace's rustc, warnings denied), so the dependencies are compiled once rather
## than again for `cargo clippy`'s check; `make lint` is the same check on its own.
test: export RUSTC_WORKSPACE_WRAPPER = $(CLIPPY_DRIVER)
test: export CLIPPY_ARGS = -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
test: deps fmt-check browser loadgen postgres cluster-deps
	@test -x "$(CLIPPY_DRIVER)" || { echo "clippy-driver not found (rustup component add clippy)"; exit 1; }
	$(CARGO) test --all-targets --no-run
	$(CARGO) test -- --test-threads=$(TEST_THREADS)
	$(MAKE) test-postgres
	$(MAKE) -j2 --output-sync=target e2e-run bench-smoke

# The browser tests and the bench smoke run side by side: both mostly wait (on
# Chromium, on timers), and their ports come from ranges that do not meet.
e2e-run: deps browser
	$(E2E)

# The integration tests mostly wait (on restate-server, timers, the database): four at a
# time on two cores took 81-88 s instead of 139-149 s, and as green.
TEST_THREADS ?= 4

CLIPPY_DRIVER = $(shell rustup which clippy-driver 2>/dev/null || command -v clippy-driver)

## test-postgres: the unit and integration tests again, each app on its own database of
## a real PostgreSQL server the tests start (Debian's package, a temp dir, a free port)
test-postgres: postgres
	SHOPFLOW_TEST_DATABASE=postgres $(CARGO) test --tests -- --test-threads=$(TEST_THREADS)

## postgres: Debian's PostgreSQL server programs, installed when missing (the tests run
## their own server; nothing is started here)
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing postgresql with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

## bench-smoke: every bench scenario for about a second, with a tenth of the load (part
## of `make test`, so the benches cannot rot; figures go to target/bench-smoke)
bench-smoke: deps browser loadgen
	BENCH_SMOKE=1 BENCH_SECONDS=1 BENCH_PAIRS=1 BENCH_OUT=target/bench-smoke $(CARGO) test --benches
	RUNS=1 SHOPFLOW_BIN=target/debug/shopflow node e2e/bench.mjs

## e2e: browser tests in headless Chromium against a real ShopFlow; screenshots in target/e2e/
e2e: deps browser
	$(CARGO) build
	$(E2E)

E2E := node --test --test-concurrency=1 e2e/*.test.mjs

## loadgen: the load generators of `make bench` (Debian's wrk and hey), installed when missing
loadgen:
	@command -v wrk >/dev/null && command -v hey >/dev/null || { \
	  echo "installing wrk and hey with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk hey; }

## browser: Debian's Chromium, installed when missing
browser:
	@dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1 || { \
	  echo "installing $(BROWSER_PACKAGES) with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PACKAGES); }

## bench: ShopFlow side by side with the Restate floor beneath it (bench/results.md and
## .json), API latency and whole-order wall time against the real stack, and the
## approve-click-to-delivered time in the browser (release build); first a clean
## release build in its own target dir, timed (dependencies already downloaded)
bench: deps browser loadgen
	rm -rf target/clean-build
	start=$$(date +%s); CARGO_TARGET_DIR=target/clean-build $(CARGO) build --release --quiet && \
	  echo $$(( $$(date +%s) - start )) > target/clean-build-seconds
	rm -rf target/clean-build
	$(CARGO) bench --bench compare
	$(CARGO) bench --bench lifecycle
	$(CARGO) build --release
	SHOPFLOW_BIN=target/release/shopflow node e2e/bench.mjs

## chaos: the whole fault-injection matrix (every kill at every point of an order's life,
## a 30 s freeze, a 30 s database lock, a 10-minute outage); its table goes to
## target/chaos-report.md. `make test` runs a subset.
chaos: deps
	$(CARGO) test --test it chaos::full_matrix -- --ignored --nocapture

## soak: 30 minutes of mixed traffic with a crash every three minutes, then every
## invariant; memory sampled each minute (SOAK_MINUTES=… to change); report in
## target/soak-report.md. Not part of `make test`.
soak: deps
	$(CARGO) test --test it chaos::soak -- --ignored --nocapture

## cluster: the scale-out layout of deploy/ on this machine, every process on 127.0.0.1:
## an S3-compatible store (moto), PostgreSQL, three Restate nodes, two service replicas
## and two web replicas behind HAProxy; prints the URL. Demo mode, as `make run`.
## Honours SHOPFLOW_* settings. `make cluster-down` stops it.
cluster: build cluster-deps
	SHOPFLOW_TRUST_USER_HEADER=$${SHOPFLOW_TRUST_USER_HEADER:-true} deploy/cluster.sh up

cluster-down:
	deploy/cluster.sh down

## cluster-test: many customers' orders through every lifecycle path on the cluster
## while a chaos loop kills -9 (and restarts) a Restate node, a service replica, a web
## replica, the PostgreSQL server, or ends the database's connections every few
## seconds; then every invariant.
## Report in target/cluster-report.md (CLUSTER_CUSTOMERS, CLUSTER_ROUNDS to change).
## `make test` runs a short smoke test of the same.
cluster-test: cluster-deps
	$(CARGO) test --release --test it cluster:: -- --ignored --nocapture --test-threads=1

## cluster-deps: Debian's haproxy and postgresql, and moto (S3 for Restate's snapshots)
## in target/cluster-venv, each installed when missing
MOTO_VERSION := 5.2.5
cluster-deps: deps postgres
	@command -v haproxy >/dev/null || { \
	  echo "installing haproxy with apt-get"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy; }
	@test -x target/cluster-venv/bin/moto_server || { \
	  python3 -m venv target/cluster-venv && \
	  target/cluster-venv/bin/pip install -q 'moto[server]==$(MOTO_VERSION)'; }

fmt:
	$(CARGO) fmt

fmt-check:
	$(CARGO) fmt --check

lint:
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
	rm -rf node_modules data
