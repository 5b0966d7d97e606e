# The two commands a fresh machine needs (see README):
#   make run    set up .venv, start demo runs if the store is empty, open tuigen on ./runs.db
#   make test   set up .venv, run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install bench bench-peers gpu-check clean

run: $(STAMP)
	$(BIN)/tuigen demo --if-empty
	$(BIN)/tuigen

test: $(STAMP) services
	$(BIN)/python -m pytest -q

# PostgreSQL and Slurm for the tests that run against real servers (skipped where not possible).
services:
	bash scripts/services/system-deps.sh

install: $(STAMP)

# The prepared GPU smoke check (bench/gpu_check.py): PASS|FAIL lines and a JSON summary, < 8 min on one GPU.
gpu-check: $(STAMP)
	$(BIN)/python bench/gpu_check.py --device cuda

# Benchmarks print their figures; peers they compare against are installed here, not in the app.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet denoising-diffusion-pytorch
	$(BIN)/python bench/logging_throughput.py
	$(BIN)/python bench/ddpm_vs_lucidrains.py
	$(BIN)/python bench/ddim_vs_ddpm.py
	$(BIN)/python bench/fid_extraction.py
	$(BIN)/python bench/tui_store_scale.py
	$(BIN)/python bench/run_screen_scale.py

# tuigen's logging against MLflow and trackio. They live in their own venv: their pins
# (sqlalchemy, alembic, pandas...) must never move the app's .venv.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

bench-peers: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/logging_vs_peers.py

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e . mlflow trackio
	touch $(BENCH_STAMP)

# Re-installs when pyproject.toml changes. torch comes from the plain PyPI build (CPU and
# CUDA); pyproject excludes the local 2.13.0+cpu wheel, which has no matching torchvision.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@# pip compiles the dependencies but not an editable project: without this, a machine with
	@# PYTHONDONTWRITEBYTECODE set recompiles tuigen at every start (about 150 ms of the TUI's cold start).
	$(BIN)/python -m compileall -q tuigen > /dev/null
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(BENCH_VENV) build *.egg-info
