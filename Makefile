# kira: two commands do everything on a fresh machine.
#   make demo   set up, build the WordNet demo index, train default readers (cached), answer questions
#   make test   set up, run the test suite
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WS ?= workspace
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_VERBOSITY ?= error
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test lint bench wheel clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

/usr/share/wordnet/data.noun:
	@if command -v apt-get >/dev/null; then \
	  (apt-get install -y -q wordnet-base || (apt-get update -q && apt-get install -y -q wordnet-base)) >/dev/null; \
	else echo "WordNet missing and no apt-get: install wordnet-base (Debian) by hand"; exit 1; fi

/usr/bin/chromium:
	@if command -v apt-get >/dev/null; then \
	  (apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium)) >/dev/null; \
	else echo "Chromium missing and no apt-get: install chromium (Debian) by hand"; exit 1; fi

setup: $(VENV)/.installed /usr/share/wordnet/data.noun /usr/bin/chromium

demo: setup
	$(BIN)/python -m kira.demo --workspace $(WS)

test: setup
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q -x --timeout=900

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/plm_encode.py

wheel: setup
	$(BIN)/python -m build --wheel --outdir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info
