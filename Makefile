# Two commands set up everything: `make run` and `make test` (both install into .venv first).
# `make run` installs only what the local stack needs (extra `local`); `make test` (and
# `make install`) add the CDK, linters and test tools (extra `dev`). One .venv; a stamp file
# per extra, so a second `make run` installs nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check --no-compile
LOCAL_STAMP := $(VENV)/.installed-local
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install install-local run test test-unit test-integration test-infra test-e2e lint synth layers bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(LOCAL_STAMP): pyproject.toml | $(PY)
	$(PIP) -e '.[local]'
	touch $@

$(DEV_STAMP): pyproject.toml $(LOCAL_STAMP)
	$(PIP) -e '.[dev]'
	touch $@

install-local: $(LOCAL_STAMP)

install: $(DEV_STAMP)

run: install-local
	$(PY) -m local

# tests/integration records every AWS call of every function (build/iam/calls.json); tests/infra
# checks those calls against the synthesized IAM policies, so integration runs first.
test: install
	$(PY) -m ruff check .
	$(PY) -m pytest tests/unit tests/integration tests/infra tests/e2e

test-unit: install
	$(PY) -m pytest tests/unit

test-integration: install
	$(PY) -m pytest tests/integration

test-infra: install
	$(PY) -m pytest tests/infra

test-e2e: install
	$(PY) -m pytest tests/e2e

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy layers/core/python/datasets_core local infra

layers: install
	$(PY) -m infra.build_layers

synth: layers
	CDK_OUTDIR=cdk.out $(PY) app.py
	@echo "template: cdk.out/$${STACK_NAME:-DatasetsApi}.template.json"

bench: install
	$(PY) -m bench

clean:
	rm -rf build cdk.out .pytest_cache .mypy_cache .ruff_cache
