# Slipway developer entry points. Everything runs from the repo's own .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp

SCENARIO ?= happy
PORT ?= 8000
PYTEST_ARGS ?=
# Chalice stage to package, and the config dir shipped with it as chalicelib/ecs/$(STAGE)/, where
# the stage's SLIPWAY_CONFIG (.chalice/config.json) points. Not chalicelib/config/: that name is
# taken by the chalicelib/config.py module.
STAGE ?= prod
CONFIG_DIR ?= ecs/production

.PHONY: venv test demo local bench package deploy clean

venv: $(STAMP)

# Create the venv on first use; reinstall whenever a requirements file changes. The project itself
# is installed editable, which puts the operator CLI `slipway` (pyproject.toml) in $(VENV)/bin.
$(STAMP): requirements.txt requirements-dev.txt requirements-lint.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements-dev.txt -e .
	touch $@

test: venv
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: venv
	$(PY) -m devstack demo --scenario $(SCENARIO)

local: venv
	$(PY) -m devstack serve --host 127.0.0.1 --port $(PORT) --config $(CONFIG_DIR)

bench: venv
	$(PY) -m bench

# Chalice only packages app.py, chalicelib/ and vendor/: check the stage's config, copy it in, let
# Chalice write its SAM template, then deploy/template.py adds the per-function roles, tables,
# queue, alarms, dashboard and log groups (see docs/deploying.md).
package: venv
	$(PY) -m deploy.check $(CONFIG_DIR)
	rm -rf chalicelib/ecs/$(STAGE) build/package
	mkdir -p chalicelib/ecs
	cp -R $(CONFIG_DIR) chalicelib/ecs/$(STAGE)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} SLIPWAY_WORK_QUEUE=slipway-$(STAGE)-work \
		$(VENV)/bin/chalice package --stage $(STAGE) build/package
	$(PY) -m deploy.template $(STAGE) $(CONFIG_DIR) build/package/sam.json
	$(PY) deploy/precompile.py build/package/deployment.zip

# Needs AWS credentials: uploads build/package/ to BUCKET (default slipway-artifacts-<account>-
# <region>, created if missing) and creates or updates the stack slipway-$(STAGE). Stack parameters
# as PARAMS="Tracing=true AlarmTopicArn=arn:…" (docs/deploying.md).
BUCKET ?=
PARAMS ?=
DEPLOY_ARGS ?=
deploy: venv
	$(PY) -m deploy.deploy --stage $(STAGE) $(if $(BUCKET),--bucket $(BUCKET)) $(DEPLOY_ARGS) $(PARAMS)

clean:
	rm -rf build chalicelib/ecs test-artifacts .pytest_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
