# The companion book. `make book` and `make test` create their own virtual environment from a bare Python.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CHAPTER ?= sfw
PROFILE ?= book

.PHONY: install book html test unit run claims bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (companion)" >/dev/null
	touch $(STAMP)

## Re-execute stale notebooks at the book profile, then build the HTML book (book/_build/html/index.html).
book: $(STAMP)
	$(BIN)/companion run all --profile book
	$(BIN)/companion build

## Build the HTML from the committed notebooks without executing anything.
html: $(STAMP)
	$(BIN)/companion build

## Everything CI checks: unit tests, claims, CLI, nbval over every committed notebook, strict book build.
test: $(STAMP)
	COMPANION_QUIET=1 $(BIN)/python -m pytest --nbval-lax --nbval-current-env -p no:cacheprovider tests book

## Only the fast tests (no notebook re-execution, no book build).
unit: $(STAMP)
	COMPANION_QUIET=1 $(BIN)/python -m pytest -m "not slow" tests

run: $(STAMP)
	$(BIN)/companion run $(CHAPTER) --profile $(PROFILE)

claims: $(STAMP)
	$(BIN)/companion claims

bench: $(STAMP)
	$(BIN)/companion bench

clean:
	rm -rf book/_build runs .pytest_cache
