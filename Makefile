# aicarousel: two commands on a fresh machine with Python 3.11 and make.
#   make run    builds the pinned virtual environment if missing, runs the baseline
#               (results/baseline.nc), the calibration table (results/calibration.csv)
#               and builds the figures (figures/out/)
#   make test   same environment, runs the whole test suite
#   make docs   API reference from the numpy docstrings (Sphinx, warnings are errors)
# The environment is rebuilt when requirements.lock or pyproject.toml change.

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.aicarousel-installed
PYTEST_ARGS ?= -n 2

.PHONY: all venv run baseline figures calibrate test docs schema clean help

all: run

help:
	@echo "make venv     create $(VENV) from requirements.lock (with $(PYTHON)) and install aicarousel"
	@echo "make run      venv + baseline run (results/baseline.nc) + figures"
	@echo "make test     venv + the whole test suite (pytest $(PYTEST_ARGS))"
	@echo "make figures  build every figure from results/ (figures/build.py)"
	@echo "make calibrate  posterior of the 20 parameters the targets inform most (~12 min on 2 cores) + its figures"
	@echo "make docs     API reference into docs/_build/html (Sphinx -W: warnings are errors)"
	@echo "make schema   regenerate scenarios/schema.json from aicarousel.scenario_schema"
	@echo "make clean    remove results/, figures/out/, caches (keeps $(VENV))"

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

baseline: $(STAMP)
	$(BIN)/aicarousel run --output results/baseline.nc
	$(BIN)/python analysis/calibration.py

run: baseline
	$(MAKE) figures

calibrate: $(STAMP)
	$(BIN)/python analysis/posterior.py
	$(BIN)/python figures/build.py --only calibration_corner calibration_fan

figures: $(STAMP)
	@if [ -f figures/build.py ]; then \
		$(BIN)/python figures/build.py; \
	else \
		echo "figures/build.py not present yet: no figures built"; \
	fi

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

docs: $(STAMP)
	$(BIN)/python -m sphinx -b html -W --keep-going docs docs/_build/html

schema: $(STAMP)
	$(BIN)/python -m aicarousel.scenario_schema

clean:
	rm -rf results figures/out bench/out docs/_build .cache .pytest_cache
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
