# One entry point for a newcomer and for CI. Nothing here needs Azure or Core Tools.
#   make run    install what is missing, start Azurite and the local host on :7071
#   make run-edge  the same behind nginx on :8080, the local edge with the service's bans
#   make test   install what is missing, run the whole test suite
#   make lint   ruff check + ruff format --check
#   make screenshots  docs/screenshots/*.png for the README (a real browser)
#   make bench  benchmarks and fault tests: Azurite, the local host, targets PASS/FAIL (over an hour)
#   make fuzz   schemathesis against the local host from /api/openapi.json (~6 min)
#   make settings-table  the README's settings table, from shared/config.py
#   make clean  remove the venv, node_modules, Azurite data and caches

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.requirements.stamp
NPM_STAMP := node_modules/.package-lock.stamp
PORT ?= 7071
PYTEST_ARGS ?=
CHROMIUM := /usr/bin/chromium
FAKETIME := /usr/bin/faketime
NGINX := /usr/sbin/nginx
EDGE_PORT ?= 8080

.PHONY: install run run-edge test lint format clean bench bench-small screenshots fuzz settings-table

install: $(PIP_STAMP) $(NPM_STAMP) local.settings.json

$(PY):
	$(PYTHON) -m venv $(VENV)

# reinstalled when either requirements file changes
$(PIP_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# npm ci when node_modules is missing or package-lock.json changed
$(NPM_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# git-ignored; made from the sample with fresh keys, gains settings the sample adds later
local.settings.json: local.settings.sample.json | $(PIP_STAMP)
	$(PY) -m devhost init-settings
	touch $@

run: install
	$(PY) -m devhost run --port $(PORT)

# the same behind nginx as the edge on :$(EDGE_PORT): X-Forwarded-For, /admin, rate limit, bans
run-edge: install $(NGINX)
	$(PY) -m devhost run --port $(PORT) --edge-port $(EDGE_PORT)

# checkov on infra/ first (make lint-infra's half that is not pytest), then pytest, which
# starts its own Azurite on free ports; exit code 5 (no test ran) fails too
test: install $(CHROMIUM) $(FAKETIME) $(NGINX) checkov
	$(PY) -m pytest $(PYTEST_ARGS)

# Debian packages the tests need, each installed only when missing: Chromium for the
# browser tests (Playwright drives it and never downloads one), libfaketime for the
# offline verifier's tests (they run the verifier with its clock ahead), nginx as the
# local edge (make run-edge, and the bans' tests)
$(CHROMIUM) $(FAKETIME) $(NGINX):
	@echo "installing $(notdir $@) (apt-get)"
	@SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(notdir $@) </dev/null >/dev/null

# the README's screenshots (docs/screenshots): the guest page and the console on an Azurite and
# local host of their own, the account pages as the journey test walks them
screenshots: install $(CHROMIUM)
	$(PY) -m tests.browser.screenshots
	SCREENSHOTS_DIR=docs/screenshots $(PY) -m pytest -q tests/browser/test_account_journey.py

# starts its own Azurite and local host; prints the targets, writes bench/results/<time>.json
# and, from it, docs/BENCHMARKS.md with its plots
bench: install
	$(PY) -m bench --docs $(BENCH_ARGS)

# the same scenarios with small N (a smoke run; `make test` runs them too)
bench-small: install
	$(PY) -m bench --small $(BENCH_ARGS)

# schemathesis on every operation of /api/openapi.json, through its own local host and
# Azurite (generous rate limits): FUZZ_MAX_EXAMPLES generated cases per operation and test,
# on top of the boundary cases; prints the count per operation. `make test` runs 15.
FUZZ_MAX_EXAMPLES ?= 200
fuzz: install
	FUZZ_MAX_EXAMPLES=$(FUZZ_MAX_EXAMPLES) $(PY) -m pytest tests/fuzz --timeout=3600 $(PYTEST_ARGS)

# tests/unit/test_settings_table.py fails until the table is written again
settings-table: $(PIP_STAMP)
	$(PY) -m devhost.settings_table

lint: $(PIP_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(PIP_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) node_modules .azurite .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# infrastructure checks (make lint-infra), kept beside the Bicep
include infra/lint.mk
