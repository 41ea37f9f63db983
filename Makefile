# Two entry points for a fresh machine: `make demo` (main job) and `make test`.
# Both create .venv on first use. torch==2.13.0 is installed first and on its own: it is the
# local CPU build; an unpinned torch would pull several GB of CUDA packages.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.fmtrack-installed

.PHONY: setup demo test test-fast bench table clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The main job: the default tracker (fmtrack preset, shipped default model) on MOT16-09, scored.
demo: $(STAMP)
	$(BIN)/fmtrack run --seq MOT16-09

# README's Table 2 and descriptor table from the shipped weights (about 20 minutes on 2 cores).
table: $(STAMP)
	PATH=$(BIN):$$PATH benchmarks/table2.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Without the tests marked slow (training runs, killed-and-resumed processes): minutes, not tens of them.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/fmtrack bench tracker

clean:
	rm -rf $(VENV) runs .pytest_cache
