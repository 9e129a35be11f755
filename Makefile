# `make run` and `make test` each set themselves up (idempotently) and then run.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# The bot's data (index, embedding cache, the SQLite file with the team's questions and feedback,
# the team's own documents): `make clean` never touches it, `make distclean` asks first.
DATA_DIR ?= $(or $(HINGE_DATA_DIR),.hinge)

.PHONY: run test lint setup setup-dev bench clean distclean

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

# The virtual environment and tool caches only: the data folder stays.
clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist

# Also the data folder, after a typed "yes" at a terminal; without a terminal it refuses.
distclean:
	@if [ ! -t 0 ]; then \
		echo "make distclean deletes $(DATA_DIR) (the SQLite file with the team's questions and feedback," \
			"the index and the team's documents); run it at a terminal to confirm" >&2; exit 1; fi
	@printf '%s' "Delete $(DATA_DIR), with the team's questions, feedback and documents? Type yes: "; \
		read answer; if [ "$$answer" != yes ]; then echo "kept $(DATA_DIR)"; exit 1; fi
	rm -rf $(DATA_DIR)
	$(MAKE) clean
