# `make run` and `make test` each set themselves up (idempotently) and then run.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test lint setup setup-dev bench clean

# The stamp is rebuilt only when the project's dependencies or the install script change.
$(VENV)/.stamp-run: pyproject.toml scripts/install.sh
	scripts/install.sh $(VENV)
	touch $@

$(VENV)/.stamp-dev: pyproject.toml scripts/install.sh
	scripts/install.sh $(VENV) dev
	touch $@ $(VENV)/.stamp-run

setup: $(VENV)/.stamp-run
setup-dev: $(VENV)/.stamp-dev

run: $(VENV)/.stamp-run
	$(VENV)/bin/hinge start

lint: $(VENV)/.stamp-dev
	$(VENV)/bin/ruff check bot index tests bench
	$(VENV)/bin/mypy

test: $(VENV)/.stamp-dev lint
	$(VENV)/bin/pytest -q -ra

bench: $(VENV)/.stamp-dev
	$(PY) bench/retrieval.py

clean:
	rm -rf $(VENV) .hinge .mypy_cache .ruff_cache .pytest_cache
