# Fanout: `make run` starts everything, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
UV := $(VENV)/bin/uv
UV_INSTALLED := $(VENV)/.installed-uv
TS_WORKER := examples/typescript-worker
NPM := $(shell command -v npm 2>/dev/null)
# Every dependency, transitive ones too, pinned with its hashes: all extras (local, dev, bench)
# for .venv, and [project].dependencies alone for the Dockerfile. `make lock` writes both.
LOCK := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
LOCK_OPTIONS := --universal --python-version 3.11 --generate-hashes --no-strip-extras --quiet

.PHONY: install lock run worker web test system-deps lint format bench bench-full bench-redis replay-histories screenshots clean no-npm

install: $(INSTALLED) $(if $(NPM),$(TS_WORKER)/lib/main.js,no-npm)

# .venv holds exactly the lock (uv pip sync also removes what it no longer lists), then Fanout
# itself, editable. uv, itself in the lock, comes first, installed by pip with the lock's hashes.
$(UV_INSTALLED): $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Fanout needs Python 3.11 or newer; set PYTHON=python3.11 (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)
	awk '/^uv==/ { keep = 1; print; next } keep && /^[^ ]/ { exit } keep' $(LOCK) > $(VENV)/uv.lock
	$(PY) -m pip install --quiet --require-hashes --no-deps -r $(VENV)/uv.lock
	@touch $@

$(INSTALLED): pyproject.toml $(LOCK) $(UV_INSTALLED)
	$(UV) pip sync --quiet --python $(PY) --require-hashes $(LOCK)
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	@touch $@

lock: $(UV_INSTALLED)  ## rewrite requirements/*.lock from pyproject.toml (the newest versions it allows), then make install
	$(UV) pip compile pyproject.toml $(LOCK_OPTIONS) --all-extras -o $(LOCK)
	$(UV) pip compile pyproject.toml $(LOCK_OPTIONS) -c $(LOCK) -o $(RUNTIME_LOCK)
	$(MAKE) install

# examples/typescript-worker: its packages from the npm registry (its .npmrc runs no install
# scripts), then its build; without npm, its test says what to install.
$(TS_WORKER)/node_modules/.package-lock.json: $(TS_WORKER)/package-lock.json
	cd $(TS_WORKER) && npm ci --no-audit --no-fund

$(TS_WORKER)/lib/main.js: $(TS_WORKER)/node_modules/.package-lock.json $(TS_WORKER)/tsconfig.json $(wildcard $(TS_WORKER)/src/*.ts)
	cd $(TS_WORKER) && npm run --silent build

no-npm:
	@echo "npm not found: examples/typescript-worker is not installed (install Node.js and npm, then make install)"

run: install  ## Temporal dev server + Web UI, workers (Python, and TypeScript with Node.js) and web app; Ctrl+C stops all
	$(PY) -m fanout.run

worker: $(INSTALLED)  ## only a worker (needs a running Temporal)
	$(PY) worker.py

web: $(INSTALLED)  ## only the web app (needs a running Temporal)
	$(VENV)/bin/uvicorn web.app:app --host $${FANOUT_HOST:-127.0.0.1} --port $${FANOUT_PORT:-8000}

# TEST_PROCESSES=N runs the test files in N processes (pytest-xdist, a file's tests in one of
# them), then the tests marked serial (load, killed processes) alone; coverage is of both runs.
# On two cores its parallel part took 9 to 11 minutes, but tests that time real processes then
# failed now and then (UI waits, a fuzz run's connections): one process, the default, is what
# CI runs.
TEST_PROCESSES ?= 1

test: system-deps lint $(TS_WORKER)/lib/main.js  ## lint, then every test suite (installs Debian's chromium, nodejs and npm if missing)
ifeq ($(TEST_PROCESSES),1)
	$(PY) -m pytest
else
	$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile -m "not serial" --cov-fail-under=0
	$(PY) -m pytest -m serial --cov-append
endif

# What the tests need that pip cannot install: Debian's Chromium (tests/browser), Node.js and npm
# (examples/typescript-worker), with apt-get (sudo when not root) when missing; when that cannot
# be done, one line says what to install, and no test starts.
system-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing=" chromium"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	[ -n "$$missing" ] || exit 0; \
	sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	if command -v apt-get >/dev/null && { [ -z "$$sudo" ] || command -v sudo >/dev/null; }; then \
	  echo "Installing Debian's$$missing with apt-get, for the tests"; \
	  { $$sudo apt-get update -qq && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing; } >/dev/null 2>&1 \
	  && exit 0; \
	fi; \
	echo "make test needs$$missing: install them (Debian: apt-get install$$missing), then run make test again" >&2; \
	exit 1

bench: $(INSTALLED) bench-redis  ## speed and memory against the bare SDK and Celery: writes docs/benchmarks.md
	$(PY) -m bench.run

bench-full: $(INSTALLED) bench-redis  ## make bench, listing 10,000 stored jobs and one 10,000-action job (far over 10 minutes)
	$(PY) -m bench.run --full

# The Celery peer (celery[redis], in the lock) needs Debian's redis-server (never a downloaded
# one), installed as system-deps installs Chromium; if that fails, the report says the peer was
# not measured.
bench-redis:
	@if [ ! -x /usr/bin/redis-server ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  { $$sudo apt-get update -qq && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } \
	  || echo "redis-server could not be installed: the Celery + Redis peer will not be measured"; \
	fi

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

replay-histories: $(INSTALLED)  ## re-record tests/replay/histories (only for intended breaking changes)
	$(PY) -m tests.replay.record_histories

screenshots: $(INSTALLED)  ## retake docs/*.png from the real app (needs /usr/bin/chromium)
	$(PY) -m docs.take_screenshots

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache $(TS_WORKER)/node_modules $(TS_WORKER)/lib
