# Two commands do all the set-up on a fresh machine:  make demo  and  make test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2
REQUIREMENTS := $(if $(CUDA),requirements-cuda.txt,requirements.txt)
STAMP := $(VENV)/.installed-$(if $(CUDA),cuda,cpu)
# Python's default, bytecode caching, even where the environment turns it off: the suite and
# the demo start a few hundred Python processes that import the same modules, and pytest keeps
# its rewritten test modules in the same cache (BENCHMARKS.md: 20 s of make test).
unexport PYTHONDONTWRITEBYTECODE

# The demo runs in a folder of its own, demo/run/ (its synthetic archives, results, logs), so a
# real run's results/ never mixes with it. DEMO_CONFIGS adds files, e.g. demo/experiments.yaml.
DEMO_DIR := demo/run
DEMO_CONFIGS ?= demo/config.yaml
DEMO := $(BIN)/snakemake --directory $(DEMO_DIR) --configfile config.yaml $(DEMO_CONFIGS)

.PHONY: venv demo demo-report test test-backbones lint format report clean

venv: $(STAMP)

# uv installs the pinned wheels in parallel and compiles their bytecode on every core: 20 s on a
# fresh 2-core machine where pip takes 43-55 s (BENCHMARKS.md, "Installing with uv"). uv reads
# UV_INDEX_URL and UV_EXTRA_INDEX_URL, not pip's configuration: behind a private package index
# set those, or install with pip instead:  make venv INSTALL=".venv/bin/pip install"
UV_VERSION := 0.13.10
INSTALL ?= $(BIN)/uv pip install --python $(BIN)/python --compile-bytecode

$(STAMP): $(REQUIREMENTS) requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(INSTALL) --quiet -r $(REQUIREMENTS) -r requirements-dev.txt
	$(INSTALL) --quiet --no-deps -e .
	touch $@

# The whole pipeline on the synthetic dataset the workflow generates itself.
demo: venv
	$(DEMO) --cores $(CORES) --resources gpu=1

# Lint (ruff, snakefmt, snakemake --lint) and the test suite, four test files at a time,
# longest first (tests/conftest.py): the Slurm test, which mostly waits on its cluster, keeps
# one worker; the three others share the cores and fill the waits of the workflow runs.
test: venv lint
	$(BIN)/pytest -q -n 4 --dist loadfile --no-loadscope-reorder

# Every keras.applications backbone built and checked against Keras (minutes).
test-backbones: venv
	$(BIN)/pytest -q -n 2 tests/test_training_backbones.py --all-backbones

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint --configfile demo/config.yaml

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile rules/

# The HTML report of the run made in this folder (config.yaml, then CONFIGS if given: the same
# files as the run), and of the demo's run.
# report.css lays the front page out to the window's width. Its path is absolute: Snakemake
# reads it after moving into the run's folder (--directory).
REPORT := --report-stylesheet $(CURDIR)/report/report.css --report

report: venv
	$(BIN)/snakemake $(REPORT) report.html $(if $(CONFIGS),--configfile config.yaml $(CONFIGS))

demo-report: venv
	$(DEMO) $(REPORT) $(CURDIR)/$(DEMO_DIR)/report.html

# Removes what the demo made, never a real run's results/ and logs/.
clean:
	rm -rf $(DEMO_DIR)
