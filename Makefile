# Two commands matter: `make demo` and `make test`. Everything else is a building block.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
IAC_VENV := .venv-iac
LOCK_VENV := .venv-lock
# The lock tool, pinned (it decides the content of requirements.txt); `make lock LOCK_ARGS=--upgrade` moves
# every transitive pin to the newest release, plain `make lock` keeps existing pins that still fit.
PIP_TOOLS := pip==26.3 pip-tools==7.7.0
LOCK_ARGS ?=
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)

.PHONY: test demo lint typecheck contracts unit integration e2e iac bench clean browser lock

# The HTML report's browser test (tests/browser) and `python -m tools.report_screenshot` drive Debian's Chromium
# headless through Playwright with executable_path: Playwright's own browser download is neither possible here nor
# wanted. Installed from Debian's packages when missing (as root; through sudo otherwise).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# requirements.txt is the hashed lock (see requirements.in): the runtime dependencies are installed exactly as
# deployed, each file checked against its sha256.
$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	# The Functions worker's own indexer, for the host-load test. It declares Python >= 3.13 but is pure Python
	# and runs on 3.11 (see shared/reference/spike.md Q3), so it is installed without its metadata checks.
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --ignore-requires-python \
		azure-functions-runtime==1.3.0 azurefunctions-extensions-base==1.2.0
	@touch $@

node_modules/.installed: package.json package-lock.json tools/azurite_patch.py
	npm ci --no-audit --no-fund --loglevel=error
	$(PY) -m tools.azurite_patch
	@touch $@

$(IAC_VENV)/.installed:
	@test -x $(IAC_VENV)/bin/python || $(PY) -m venv $(IAC_VENV)
	$(IAC_VENV)/bin/python -m pip install -q --disable-pip-version-check checkov==3.3.30 pycep-parser==0.5.1
	@touch $@

$(CHROMIUM):
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-liberation
	@test -x $@ || { echo "$@ is still missing after installing Debian's chromium" >&2; exit 1; }

browser: $(CHROMIUM)

deps: $(VENV)/.installed node_modules/.installed $(IAC_VENV)/.installed $(CHROMIUM)

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check function_app.py remediator emulator tools bench tests

typecheck: $(VENV)/.installed
	$(BIN)/mypy

contracts: $(VENV)/.installed
	$(BIN)/lint-imports

test: deps lint typecheck contracts
	IAC_PYTHON=$(CURDIR)/$(IAC_VENV)/bin/python $(BIN)/python -m pytest -q -p no:cacheprovider

unit: $(VENV)/.installed
	$(BIN)/python -m pytest -q tests/unit

# The offline IaC checks alone (checkov Bicep+Terraform, bicep-types type check, parity, preflight, workbook drift); see docs/deploy.md.
iac: $(VENV)/.installed $(IAC_VENV)/.installed
	IAC_PYTHON=$(CURDIR)/$(IAC_VENV)/bin/python $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/infra

demo: $(VENV)/.installed node_modules/.installed
	$(BIN)/python -m tools.demo

bench: $(VENV)/.installed
	$(BIN)/python -m bench all

# Regenerate the hashed lock requirements.txt from requirements.in (needs the package index).
$(LOCK_VENV)/.installed:
	@test -x $(LOCK_VENV)/bin/python || $(PY) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --disable-pip-version-check $(PIP_TOOLS)
	@touch $@

lock: $(LOCK_VENV)/.installed
	$(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links $(LOCK_ARGS) --output-file=requirements.txt requirements.in

clean:
	rm -rf $(VENV) $(IAC_VENV) $(LOCK_VENV) node_modules .mypy_cache .ruff_cache
