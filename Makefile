# xwam: the two commands a new user needs are `make demo` and `make test`.
# Both run `make setup` first (idempotent: seconds when nothing changed).

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
RUFF   := $(VENV)/bin/ruff
LINTED := xwam_ros xwam_model test launch tools benchmarks setup.py

.PHONY: setup demo test lint format bench bench-gpu lock clean help

help:
	@echo "make demo   - set up, then run the demo graph through the xwam launcher"
	@echo "              (make demo DEMO_ARGS=--view: and watch it live in a browser)"
	@echo "make test   - set up, lint (ruff) and run the test suite"
	@echo "make setup  - create/update .venv, build xwam_msgs, install the project"
	@echo "make bench  - run the benchmarks (speed and memory figures)"
	@echo "make bench-gpu - the paper preset on one GPU (chunk p50/p95, future, memory)"
	@echo "make format - format the code with ruff"
	@echo "make lock   - regenerate requirements.lock from the current .venv"

setup:
	@$(PYTHON) tools/setup_env.py

# DEMO_ARGS: more options of `xwam demo`, e.g. `make demo DEMO_ARGS=--view` (browser view).
demo: setup
	$(VENV)/bin/xwam demo $(DEMO_ARGS)

test: setup lint
	$(PY) -m pytest

lint: setup
	$(RUFF) check $(LINTED)
	$(RUFF) format --check $(LINTED)

format: setup
	$(RUFF) check --fix $(LINTED)
	$(RUFF) format $(LINTED)

bench: setup
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# On a machine without CUDA it says so and runs at the tiny preset on the CPU.
bench-gpu: setup
	$(PY) benchmarks/bench_gpu.py

lock:
	$(PY) tools/write_lock.py > requirements.lock

clean:
	rm -rf build install log .pytest_cache .ruff_cache
