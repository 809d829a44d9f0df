# The companion book. `make book` and `make test` create their own virtual environment from a bare Python.
SHELL  := bash
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHAPTER ?= sfw
PROFILE ?= book
# Parallel workers for the tests (pytest-xdist) and for `companion run` (default: the number of cores).
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
PYTEST := COMPANION_QUIET=1 $(BIN)/python -m pytest -p no:cacheprovider

# `$(call timed,NAME,COMMAND)`: run COMMAND and print how long the phase NAME took (and keep its exit status).
timed = start=$$(date +%s); $(2); rc=$$?; echo "== phase $(1): $$(( $$(date +%s) - start )) s (exit $$rc)"; exit $$rc

.PHONY: install book html lab format test test-lint test-unit test-nbval test-build unit run claims bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@$(call timed,install,\
	  $(PYTHON) -m venv $(VENV) && \
	  $(BIN)/python -m pip install --quiet --upgrade pip && \
	  $(BIN)/python -m pip install --quiet -r requirements.txt && \
	  $(BIN)/python -m pip install --quiet --no-deps -e . && \
	  $(BIN)/companion kernel >/dev/null && \
	  touch $(STAMP))

## Re-execute stale notebooks at the book profile, side by side, then build the HTML book (book/_build/html/index.html).
book: $(STAMP)
	$(BIN)/companion run all --profile book --jobs $(JOBS)
	$(BIN)/companion build

## JupyterLab on the book's notebooks, with the pinned kernel "Python 3 (companion)" (see README: Open a notebook).
lab: $(STAMP)
	cd book && JUPYTER_PATH=$(abspath $(VENV))/share/jupyter COMPANION_QUIET=1 $(abspath $(BIN))/jupyter lab --ServerApp.open_browser=False

## Build the HTML from the committed notebooks without executing anything.
html: $(STAMP)
	$(BIN)/companion build

## Everything CI checks, phase by phase with its time: formatting and lint (ruff), unit tests (incl. runner, CLI, claims), nbval over every
## committed notebook (re-executed side by side, each notebook on one worker), the strict book build and the
## built book in headless Chromium (skipped, with the reason, where Chromium is not installed).
test: $(STAMP)
	@$(MAKE) --no-print-directory test-lint test-unit test-nbval test-build

## One formatter for the package, the tests and the notebooks (ruff; notebook code within 100 characters).
test-lint: $(STAMP)
	@$(call timed,format and lint,$(BIN)/ruff format --check --quiet shared tests book && $(BIN)/ruff check --quiet shared tests book)

format: $(STAMP)
	$(BIN)/ruff format shared tests book && $(BIN)/ruff check --fix shared tests book

test-unit: $(STAMP)
	@$(call timed,unit tests,$(PYTEST) -n $(JOBS) --dist loadfile tests --ignore=tests/test_book.py --ignore=tests/test_browser.py)

test-nbval: $(STAMP)
	@$(call timed,nbval,$(PYTEST) -n $(JOBS) --dist loadfile --nbval-lax --nbval-current-env book)

test-build: $(STAMP)
	@$(call timed,book build and browser,$(PYTEST) -rs tests/test_book.py tests/test_browser.py)

## Only the fast tests (no notebook re-execution, no book build).
unit: $(STAMP)
	$(PYTEST) -m "not slow" tests

run: $(STAMP)
	$(BIN)/companion run $(CHAPTER) --profile $(PROFILE)

claims: $(STAMP)
	$(BIN)/companion claims

bench: $(STAMP)
	$(BIN)/companion bench

clean:
	rm -rf book/_build runs .pytest_cache
