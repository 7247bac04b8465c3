# Everything a fresh machine needs is installed on first use; pip's cache (~/.cache/pip) serves repeats.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: setup demo stream-demo test bench lint

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)

demo: setup
	$(VENV)/bin/twinwatch demo

stream-demo: setup
	$(VENV)/bin/twinwatch stack demo

test: setup
	$(VENV)/bin/python -m pytest -q

bench: setup
	$(VENV)/bin/python bench/features.py
	$(VENV)/bin/python bench/scoring.py
	$(VENV)/bin/python bench/stream.py

lint: setup
	$(VENV)/bin/ruff check twinwatch schemas services tests bench
