# Two entry points that set everything up themselves on a fresh machine:
#   make demo   - the main job on its built-in default
#   make test   - the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.neuro-installed

.PHONY: install demo test lint bench-deps clean

$(STAMP): setup.cfg Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch first: a plain `torch` requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev,lava,sweep]'
	# lava-nc 0.10.0 declares Requires-Python <3.11; on 3.11 install it alone,
	# after its pinned dependencies (installed above by the [lava] extra).
	if $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then \
	  $(BIN)/python -m pip install -q --no-deps --ignore-requires-python lava-nc==0.10.0; fi
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/neuro demo

# two worker processes (pytest-xdist): on a 2-core machine 10 min with a cold kernel cache, 16-17 min serially with a warm one
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check neuro neurons synapses deployment tests benchmarks

# Peers for benchmarks/ only: brian2 (the [bench] extra); spikingjelly and norse go to .bench/
# without their dependencies, which pin a CUDA torch (use with PYTHONPATH=.bench).
bench-deps: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python -m pip install -q --no-deps --target .bench spikingjelly==2.0.0 norse==1.1.0 loguru==0.7.3

clean:
	rm -rf $(VENV) build *.egg-info
