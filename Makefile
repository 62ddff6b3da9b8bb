# Two commands on a fresh clone: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
export FLASK_APP := wsgi:app

.PHONY: install run serve worker test lint ops-check pytest pytest-services bench migrate clean vendor proto

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

migrate: install
	$(BIN)/flask db upgrade

## Development server on the embedded defaults (SQLite, in-process fallbacks) at http://127.0.0.1:5000/api/docs
run: migrate
	$(BIN)/flask users bootstrap
	$(BIN)/python -m backend --host $(HOST) --port $(PORT)

## Production-like server: gunicorn with threaded workers (Flask-SocketIO's threading mode + simple-websocket).
## config/gunicorn.py: no access log (raw query strings), the 8,190-byte request line, JSON errors from
## gunicorn itself, a SIGTERM that finishes in-flight requests and stops the background services, and
## the Prometheus multiprocess hooks (PROMETHEUS_MULTIPROC_DIR, docs/operations.md).
serve: migrate
	$(BIN)/gunicorn -c config/gunicorn.py --workers $${WEB_WORKERS:-1} --threads $${WEB_THREADS:-64} \
		--bind $(HOST):$(PORT) wsgi:app

## RQ worker for backtest jobs (needs REDIS_URL)
worker: install
	$(BIN)/flask jobs worker

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Prometheus alert rules (docs/ops/): promtool's syntax check and the rules' unit tests. CI installs
## Debian's prometheus package for promtool; elsewhere the step is skipped when promtool is missing.
ops-check:
	@if ! command -v promtool >/dev/null && [ "$${CI:-}" = "true" ]; then \
		echo "installing promtool (Debian package prometheus)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			prometheus >/dev/null) || { echo "CI=true but promtool could not be installed" >&2; exit 1; }; \
	fi
	@if command -v promtool >/dev/null; then \
		promtool check rules docs/ops/alerts.yml && promtool test rules docs/ops/alerts.test.yml; \
	else echo "promtool not installed: skipped the alert-rule checks (apt-get install prometheus)"; fi

## Lint, then pytest on the defaults, then again on PostgreSQL + Redis when they are reachable (required in CI)
test: lint ops-check
	@if command -v node >/dev/null; then node --test frontend/tests/; \
	elif [ "$${CI:-}" = "true" ]; then echo "CI=true but node is missing (dashboard unit tests)" >&2; exit 1; \
	else echo "node not installed: skipped the dashboard's JavaScript unit tests"; fi
	env -u DATABASE_URL -u REDIS_URL -u TEST_DATABASE_URL -u TEST_REDIS_URL $(BIN)/python -m pytest
	@if TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(PG_TEST_URL)} TEST_REDIS_URL=$${TEST_REDIS_URL:-$(REDIS_TEST_URL)} \
		$(BIN)/python tests/check_services.py; then \
		echo "== pytest against PostgreSQL + Redis =="; \
		TEST_DATABASE_URL=$${TEST_DATABASE_URL:-$(PG_TEST_URL)} TEST_REDIS_URL=$${TEST_REDIS_URL:-$(REDIS_TEST_URL)} \
		$(BIN)/python -m pytest; \
	elif [ "$${CI:-}" = "true" ]; then \
		echo "CI=true but PostgreSQL/Redis are unreachable: failing" >&2; exit 1; \
	else \
		echo "PostgreSQL/Redis not reachable: skipped the second run"; \
	fi

## Benchmarks: reference libraries (backtesting.py, vectorbt...) live in their own venv so they never
## leak into the app's (start-up is measured with the app's own .venv).
BENCH_BIN := benchmarks/.venv/bin
$(BENCH_BIN)/.installed: requirements.txt benchmarks/requirements.txt
	test -x $(BENCH_BIN)/python || $(PYTHON) -m venv benchmarks/.venv
	$(BENCH_BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt \
		-r requirements-dev.txt -r benchmarks/requirements.txt
	touch $@

bench: install $(BENCH_BIN)/.installed
	APP_PYTHON=$(BIN)/python $(BENCH_BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache

## Dashboard: re-vendor the pinned browser libraries after changing frontend/package.json (output committed)
vendor:
	cd frontend && npm ci && node vendor.mjs

## Upstox feed: regenerate MarketDataFeedV3_pb2.py(i) after changing the .proto (output committed;
## the runtime needs only `protobuf`, grpcio-tools is a dev tool)
FEED_PROTO := backend/domain/market/upstox_feed
proto: install
	$(BIN)/python -m grpc_tools.protoc -I $(FEED_PROTO) --python_out=$(FEED_PROTO) --pyi_out=$(FEED_PROTO) \
		$(FEED_PROTO)/MarketDataFeedV3.proto
