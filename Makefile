# The two commands of the README: `make demo` and `make test`. Each sets up what it needs.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3
export KAFKA_ESM_CACHE ?= $(CURDIR)/.cache/kafka-esm
# jsii (aws-cdk-lib's bridge to Node.js) warns loudly on Node 20; the machines run 20.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 20

.PHONY: setup setup-runtime demo test lint unit integration cdk min-versions image clean

$(BIN)/activate:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.runtime-installed: $(BIN)/activate pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev-installed: $(BIN)/activate pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.runtime-installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup-runtime: $(VENV)/.runtime-installed
setup: $(VENV)/.dev-installed node_modules/.installed

demo: setup-runtime
	$(BIN)/kafka-esm demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: lint
	$(BIN)/pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$status

unit: setup
	$(BIN)/pytest tests/unit
integration: setup
	$(BIN)/pytest -m integration
cdk: setup
	$(BIN)/pytest tests/cdk

# The declared minimum versions (constraints-min.txt) in a fresh virtualenv, then app.py
# synthesized with cdk-nag: proves the lower bounds of pyproject.toml are enough.
MIN_VENV ?= .venv-min
min-versions:
	rm -rf $(MIN_VENV) && $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install -q -c constraints-min.txt -e '.[cdk]' cdk-nag
	rm -rf $(MIN_VENV)/cdk.out
	CDK_OUTDIR=$(MIN_VENV)/cdk.out $(MIN_VENV)/bin/python app.py
	test $$(ls $(MIN_VENV)/cdk.out/*.template.json | wc -l) -eq 4

# The poller's container image (podman; a Debian-built base where no registry is reachable).
image:
	.ci/build-image

clean:
	-$(BIN)/kafka-esm local-kafka down
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache .venv-min
