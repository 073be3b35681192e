# One command to run the service, one to run the tests (see README). Everything installs into .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install run test bench lint chromium

install: $(VENV)/.installed

# torch first, from the local CPU build: a bare torch requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[test]'
	touch $@

run: install
	$(VENV)/bin/forumqa serve

# The browser tests drive Debian's Chromium; install it when missing (needs root, as in CI).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: install chromium
	$(VENV)/bin/pytest

bench: install
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check rag api tests bench
	$(VENV)/bin/mypy rag api
