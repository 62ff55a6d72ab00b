# The only commands a newcomer needs: `make quickstart` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Every extra and the dev tools (what `make test` needs); the `quickstart` extra alone.
STAMP := $(VENV)/.installed
QS_STAMP := $(VENV)/.installed-quickstart
# PyPI has no CPU wheel of llama-cpp-python, so pip compiles llama.cpp. The install builds that
# wheel into $(WHEELS) while a second pip installs everything else, then installs it from there.
# It compiles only what the Python package loads, libllama and ggml: LLAVA_BUILD=OFF leaves out
# the multimodal library, and $(LLAMA_LEAN), injected into llama.cpp's CMake project, leaves out
# its `common` library and HTTP client, which llama-cpp-python forces on but never loads. That is
# ~40% of the default compile (benchmarks/RESULTS.md).
# The CPU code is portable x86-64 with AVX2/FMA/F16C, not the package's default -march=native:
# a native build on a machine whose CPU advertises AMX (as these VMs do) dies with SIGILL in the
# first decode, and a native wheel built on one machine must not run on another. For the same
# reason pip builds it with --no-cache-dir: pip's wheel cache is keyed by the source URL only, so
# it would hand back a wheel built with other flags. To add a backend, append to these flags, e.g.
# `make LLAMA_CMAKE_ARGS="$$(make -s llama-cmake-args) -DGGML_CUDA=on"`; `make LLAMA_CMAKE_ARGS=`
# builds with the package's defaults. Then `rm -r $(WHEELS)` so that the wheel is rebuilt.
LLAMA_LEAN := $(VENV)/llama-cpp-lean.cmake
LLAMA_CPU := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=$(abspath $(LLAMA_LEAN)) $(LLAMA_CPU)
LLAMA_VERSION := $(shell sed -n 's/^llama_cpp_python==//p' constraints.txt)
WHEELS := $(VENV)/wheels
# An extra minus its `llm` part: what pip installs while llama.cpp compiles.
QS_BASE_EXTRAS := embeddings,retrieval,guardrails,tracking,eval,sweeps,serve
ALL_BASE_EXTRAS := embeddings,retrieval,guardrails,tracking,eval,notebook,sweeps,ray,serve,gateway,guard-data,dev
# Offline by default: nothing is fetched from a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

# The gateway's tests start their own redis-server and RabbitMQ on loopback (workbench/testing);
# `make services` installs the Debian packages when they are missing (root, or sudo).
SERVICE_PACKAGES := redis-server rabbitmq-server

.PHONY: services sweep install install-quickstart venv llama-cmake-args llama-wheel base-deps quickstart test test-fast lint format bench ui clean

venv:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip wheel setuptools

$(LLAMA_LEAN):
	@mkdir -p $(@D)
	@printf '%s\n' '# Written by the Makefile, injected by LLAMA_CMAKE_ARGS: a normal variable shadows the' \
		'# cached LLAMA_BUILD_COMMON that llama-cpp-python forces ON, so common/ is not built.' \
		'set(LLAMA_BUILD_COMMON OFF)' > $@

llama-cmake-args: $(LLAMA_LEAN)
	@echo '$(LLAMA_CMAKE_ARGS)'

# Run with -j2 by the stamps below: the compile and the rest of the install overlap.
llama-wheel: $(LLAMA_LEAN)
	@mkdir -p $(WHEELS)
	@if ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "llama-cpp-python $(LLAMA_VERSION): wheel already in $(WHEELS)"; \
	elif [ "$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("llama_cpp_python"))' 2>/dev/null)" = "$(LLAMA_VERSION)" ]; then \
		echo "llama-cpp-python $(LLAMA_VERSION): already installed"; \
	else \
		echo "compiling llama-cpp-python $(LLAMA_VERSION) in the background (log: $(VENV)/llama-build.log)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel --no-deps --no-cache-dir -c constraints.txt -w $(WHEELS) \
			"llama-cpp-python==$(LLAMA_VERSION)" >$(VENV)/llama-build.log 2>&1 \
		|| { tail -n 40 $(VENV)/llama-build.log; echo "error: llama-cpp-python failed to build (log: $(VENV)/llama-build.log)."; \
			echo "To build it with the package's default flags instead: make LLAMA_CMAKE_ARGS= $(MAKECMDGOALS)"; exit 1; }; \
	fi

base-deps:
	$(BIN)/pip install -c constraints.txt -e '.[$(BASE_EXTRAS)]'

$(STAMP): pyproject.toml constraints.txt
	$(MAKE) --no-print-directory venv
	$(MAKE) --no-print-directory -j2 llama-wheel base-deps BASE_EXTRAS=$(ALL_BASE_EXTRAS)
	$(BIN)/pip install -c constraints.txt --find-links $(WHEELS) -e '.[all,dev]'
	touch $(STAMP) $(QS_STAMP)

$(QS_STAMP): pyproject.toml constraints.txt
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ] && [ $(STAMP) -nt constraints.txt ]; then \
		touch $(QS_STAMP); \
	else \
		$(MAKE) --no-print-directory venv && \
		$(MAKE) --no-print-directory -j2 llama-wheel base-deps BASE_EXTRAS=$(QS_BASE_EXTRAS) && \
		$(BIN)/pip install -c constraints.txt --find-links $(WHEELS) -e '.[quickstart]' && \
		touch $(QS_STAMP); \
	fi

services:
	@if command -v redis-server >/dev/null && command -v rabbitmq-server >/dev/null; then \
		echo "redis-server and rabbitmq-server: installed"; \
	else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SERVICE_PACKAGES) >/dev/null \
		|| { echo "error: could not install $(SERVICE_PACKAGES) (Debian packages; the gateway tests need them)"; exit 1; }; \
	fi

install: $(STAMP)

install-quickstart: $(QS_STAMP)

quickstart: install-quickstart
	$(BIN)/python -m workbench ingest experiments/quickstart.yaml
	$(BIN)/python -m workbench ask experiments/quickstart.yaml "Who picked up the remaining four Premier League packages?"
	$(BIN)/python -m workbench sweep $(SWEEP_ARGS)
	$(BIN)/python -m workbench export "$$($(BIN)/python -m workbench sweep $(SWEEP_ARGS) --dry-run --json | $(BIN)/python -c 'import json, sys; print(json.load(sys.stdin)["sweep_id"])')" --out bundle --force
	@echo
	@echo "Serve the winner:         $(BIN)/python -m workbench serve bundle/"
	@echo "Open the MLflow UI with:  $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --port 5000"

# The shipped sweep: 12 variants of the quickstart pipeline on 10 questions, logged to MLflow
# (one parent run, a child run per variant). Run it again and it resumes; nothing is recomputed.
SWEEP_ARGS := experiments/sweeps/quickstart.yaml --dataset squad_disfl --limit 10
sweep: install-quickstart
	$(BIN)/python -m workbench sweep $(SWEEP_ARGS)
	@echo
	@echo "Open the MLflow UI with:  $(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --port 5000"

test: install lint
	$(BIN)/python -m pytest --durations=25

test-fast: install
	$(BIN)/python -m pytest -m "not slow and not integration"

lint: install
	$(BIN)/ruff check workbench tests benchmarks
	$(BIN)/ruff format --check workbench tests benchmarks
	$(BIN)/mypy workbench

format: install
	$(BIN)/ruff format workbench tests benchmarks
	$(BIN)/ruff check --fix workbench tests benchmarks

bench: install
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000

clean:
	rm -rf .workbench results mlflow.db mlartifacts bundle .pytest_cache
