# Development entry points. Only needs python3 (3.11+) on PATH; everything else is
# installed into .venv from pyproject.toml.

VENV := .venv
PYTHON := $(VENV)/bin/python
# Reinstall only when the dependencies may have changed, so `make run`/`make test` stay fast.
STAMP := $(VENV)/.installed

.PHONY: venv run reset-demo test bench fuzz chaos lint migrate clean system-packages

venv: $(STAMP)

$(PYTHON):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

run: venv
	$(PYTHON) -m helpdesk.devserver

# Forget the emulator's users, threads and clock (kept in var/emulator across runs); the
# next `make run` starts afresh and removes the demo page's conversations and tickets.
reset-demo: venv
	$(PYTHON) -m helpdesk.devserver reset-demo

# Installs what is missing of make, python3-venv, PostgreSQL, Chromium and docker-compose (as root).
system-packages:
	bash .ci/system-packages

test: system-packages venv
	$(PYTHON) -m tests.run_suite

# How fast (the tests only assert that things happen): figures as ratios to a baseline
# measured in the same run (tests/bench/). BENCH_ARGS="--runs 5" for more runs.
BENCH_ARGS ?=

bench: system-packages venv
	$(PYTHON) -m tests.bench $(BENCH_ARGS)

# The fuzz tests (tests/fuzz/) with FUZZ_SCALE times their examples (20 unless set) and new
# inputs on each run, on SQLite and PostgreSQL; a failure prints its seed and is kept in
# var/hypothesis, to be replayed first next time. `make test` runs them derandomized.
fuzz: venv
	FUZZ_SCALE=$${FUZZ_SCALE:-20} $(PYTHON) -m tests.run_suite -p no:cacheprovider tests/fuzz

# The chaos test (README, "Chaos test"): 10,000 webhook events and 300 replies while
# processes are killed and restarted; about 5 to 8 minutes on two cores. Options, e.g.
#   make chaos CHAOS_ARGS="--database sqlite --events 2000 --seconds 300"
# (python -m tests.chaos --help lists them all).
CHAOS_ARGS ?=

chaos: system-packages venv
	$(PYTHON) -m tests.chaos $(CHAOS_ARGS)

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

# The settings refuse to start without secrets unless DEBUG is on; a local migrate is
# for development, like `make run`.
migrate: venv
	mkdir -p var
	DEBUG=$${DEBUG:-1} $(PYTHON) manage.py migrate --noinput

clean:
	rm -rf var $(VENV)
