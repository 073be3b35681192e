# One command to run the service, one to run the tests (see README). Everything installs into .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: install run test bench lint chromium eval eval-squad eval-plain eval-reports train-reader

install: $(VENV)/.installed

# The generative tests' LLM server (the llm-test extra): llama-cpp-python has no wheel on PyPI, so pip
# compiles it once and keeps the wheel in its cache (~/.cache/pip/wheels), and a later install on the same
# machine takes seconds. Portable AVX2 code instead of -march=native: native code uses AMX instructions that
# this machine's CPU lists but its VM does not enable (SIGILL on the first completion). No multimodal library
# and, through the included file, none of llama.cpp's "common" code: the Python package loads neither.
LLAMA_CPP_CMAKE_ARGS := -DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_OPENSSL=OFF \
	-DCMAKE_PROJECT_llama.cpp_INCLUDE=$(CURDIR)/tests/llama_cpp_build.cmake

# torch first, from the local CPU build: a bare torch requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml tests/llama_cpp_build.cmake
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	@echo "== installing; the first time on a machine this compiles llama-cpp-python (about 6 min on 2 cores)"
	CMAKE_ARGS="$(LLAMA_CPP_CMAKE_ARGS)" $(PIP) install -q -e '.[test,llm-test]'
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

# Quality on held-out data. The SQuAD articles below were not used to fit the reader (rag/train/reader.py).
SQUAD ?= ../shared/eval/squad
HELD_OUT := ipod,sino-tibetan-relations-during-the-ming-dynasty,solar-energy,the-legend-of-zelda-twilight-princess,to-kill-a-mockingbird
# English questions are answered with MiniLM and e5 (USE serves other scripts only: it would slow the builds).
SQUAD_ENV := FORUMQA_EMBEDDERS='["minilm","e5"]'

eval: install
	$(VENV)/bin/forumqa eval eval/dev.jsonl --reliability

eval-squad: install
	$(PY) $(SQUAD)/prepare.py build/squad
	@echo "== each held-out article against an index of its own"
	$(SQUAD_ENV) $(VENV)/bin/forumqa eval build/squad/questions.jsonl --articles $(HELD_OUT) \
		--per-article build/squad/corpus --index-dir build/squad/per-article --by article --reliability
	@echo "== the held-out articles' questions against one index of all ten articles"
	$(SQUAD_ENV) $(VENV)/bin/forumqa eval build/squad/questions.jsonl --articles $(HELD_OUT) \
		--corpus-dir build/squad/corpus --index-dir build/squad/all --by article --reliability

# Plain questions (eval/plain) about the held-out articles, each against an index of its own. The reader
# was fitted on the other five articles' plain questions (and SQuAD's); never on these.
eval-plain: install
	$(PY) $(SQUAD)/prepare.py build/squad
	$(SQUAD_ENV) $(VENV)/bin/forumqa eval eval/plain/questions.jsonl --articles $(HELD_OUT) \
		--per-article build/squad/corpus --index-dir build/squad/per-article --by article --reliability

# Plain questions about report-like documents (eval/reports), the held-out split only (the reader was
# fitted on the other five documents), each document against an index of its own.
REPORTS_HELD_OUT := kutaisi-museum-digitisation-workshop,kvarner-ferries-annual-report,malaya-bridge-status-report,mlima-coffee-board-minutes,nordic-rural-emergency-conference
eval-reports: install
	$(SQUAD_ENV) $(VENV)/bin/forumqa eval eval/reports/questions.jsonl --articles $(REPORTS_HELD_OUT) \
		--per-article eval/reports/corpus --index-dir build/reports/per-article --by article --reliability

# Rebuilds rag/models/reader.json from the training articles; the same data gives the same bytes.
train-reader: install
	$(VENV)/bin/forumqa train-reader --squad $(SQUAD)
