# make lint-infra: checkov on the Bicep in infra/ (no failed check; every skip carries its
# reason beside it), then the project's own checks on the parsed Bicep (tests/infra), which
# cover what checkov does not see in Bicep (allowBlobPublicAccess, purge protection, the
# app settings against the settings model, ...). Included from the Makefile.

PYTHON_FOR_CHECKOV ?= python3.11
CHECKOV_VENV ?= .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

$(CHECKOV_VENV)/.installed: infra/requirements-checkov.txt
	$(PYTHON_FOR_CHECKOV) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-checkov.txt
	touch $@

.PHONY: checkov lint-infra
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV) --directory infra --framework bicep --skip-download --compact --quiet \
		--output cli --output json --output-file-path console,$(CHECKOV_VENV)/results.json
	@$(CHECKOV_VENV)/bin/python -c "import json, sys; r = json.load(open('$(CHECKOV_VENV)/results.json')); r = r[0] if isinstance(r, list) else r; s = r['summary']; print('checkov:', s); sys.exit(1 if s['failed'] or s['parsing_errors'] or not s['passed'] else 0)"

lint-infra: checkov
	.venv/bin/python -m pytest tests/infra -q
