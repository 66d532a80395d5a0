PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test bench settings clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $(STAMP) $@

run: $(STAMP)
	$(BIN)/gunicorn wsgi:app

test: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

# Rewrite the settings table in docs/settings.md from the code's settings.
settings: $(STAMP)
	PYTHONPATH=. $(BIN)/python scripts/write_settings.py docs/settings.md

clean:
	rm -rf $(VENV) .pytest_cache
