# The two commands a fresh machine needs (see README):
#   make run    set up .venv, start demo runs if the store is empty, open tuigen on ./runs.db
#   make test   set up .venv, run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install bench clean

run: $(STAMP)
	$(BIN)/tuigen demo --if-empty
	$(BIN)/tuigen

test: $(STAMP)
	$(BIN)/python -m pytest -q

install: $(STAMP)

# Benchmarks print their figures; peers they compare against are installed here, not in the app.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet denoising-diffusion-pytorch
	$(BIN)/python bench/logging_throughput.py
	$(BIN)/python bench/ddpm_vs_lucidrains.py
	$(BIN)/python bench/ddim_vs_ddpm.py
	$(BIN)/python bench/fid_extraction.py
	$(BIN)/python bench/tui_store_scale.py

# Re-installs when pyproject.toml changes. torch comes from the plain PyPI build (CPU and
# CUDA); pyproject excludes the local 2.13.0+cpu wheel, which has no matching torchvision.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
