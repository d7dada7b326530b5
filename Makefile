# spleeter-ext: every set-up step lives here, so that a fresh machine needs only Python 3.11 and make.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages: ffmpeg (stempeg, imported by musdb/museval, insists on the binaries; our own audio I/O
# uses PyAV and needs none), fluidsynth + General MIDI soundfont + mma + festival and a voice (realistic songs).
DEB_PACKAGES := ffmpeg fluidsynth fluid-soundfont-gm timgm6mb-soundfont mma festival festvox-kallpc16k
MODEL ?= stack_spleeter_2d_small
DATA ?=
STEPS ?=
BUDGET ?= default
SEEDS ?= 3
STAGE1 ?=
PYTEST_ARGS ?=
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install deb lint test test-slow test-all bench bench-separate bench-train bench-catalog demo train evaluate table1 table2 curves models clean

install: $(STAMP)

deb:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing) >/dev/null \
	      || { echo "error: apt-get could not install$$missing; install them by hand" >&2; exit 1; }; \
	  else \
	    echo "warning: Debian packages missing:$$missing (run 'sudo make deb'); musdb/museval and the realistic data engine need them" >&2; \
	  fi; \
	fi

$(STAMP): setup.py | deb
	@test -n "$(PYTHON)" || { echo "error: python3.11 not found; install Python 3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
	  || { echo "error: $(PYTHON) is not Python 3.11 (spleeter 2.4.2 / TensorFlow 2.12 need it)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,catalog,bench]'
	@touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .

test: install
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS) tests

test-slow: install
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS) tests

test-all: install
	$(PY) -m pytest -q $(PYTEST_ARGS) tests

models: install
	$(VENV)/bin/spleeter-ext models

bench: bench-separate bench-train

bench-separate: install
	$(PY) -m tools.bench.separate --out docs/benchmarks.md

bench-train: install
	$(PY) -m tools.bench.train --out docs/benchmarks.md

bench-catalog: install
	$(PY) -m tools.bench.catalog --out docs/benchmarks.md

demo: install
	$(VENV)/bin/spleeter-ext demo --output demo_output

# With no DATA, a realistic synthetic set is generated first (resumable; the numpy engine if the Debian
# packages of the realistic engine are missing), so `make train` works out of the box.
SYNTH_DATA := data/synthetic
train: install
	$(if $(DATA),,$(VENV)/bin/spleeter-ext make-dataset $(SYNTH_DATA) --train 40 --test 8 --seconds 20 --engine auto --jobs 2)
	$(VENV)/bin/spleeter-ext train -p $(MODEL) -d $(or $(DATA),$(SYNTH_DATA)) --model-dir runs/$(notdir $(basename $(MODEL))) $(if $(STEPS),--steps $(STEPS))

evaluate: install
	$(VENV)/bin/spleeter-ext evaluate -p runs/$(notdir $(basename $(MODEL))) -d $(or $(DATA),$(SYNTH_DATA)) -o runs/$(notdir $(basename $(MODEL)))/evaluation

# Experiments (experiments/README.md): results accumulate in experiments/results/$(BUDGET)/ and are reused.
EXPERIMENT_ARGS = --budget $(BUDGET) --seeds $(SEEDS) $(if $(DATA),--data $(DATA)) $(if $(STEPS),--steps $(STEPS))
table1: install
	$(PY) -m experiments table1 $(EXPERIMENT_ARGS)

table2: install
	$(PY) -m experiments table2 $(EXPERIMENT_ARGS) $(if $(STAGE1),--stage1 $(STAGE1))

curves: install
	$(PY) -m experiments curves $(EXPERIMENT_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
