# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
# Binary wheels only for the compiled dependencies: a source build of pythia8mc takes 30+ minutes.
BINARY_ONLY := pythia8mc,fastjet,energyflow,wasserstein,numba,llvmlite,awkward-cpp,cramjam,xxhash,numpy,scipy,scikit-learn,matplotlib,torch,pyarrow,dask,distributed,psutil,msgpack,tornado

.PHONY: install test test-fast demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# the CPU build of torch on local disk, first: an unpinned torch pulls GBs of CUDA packages
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q --only-binary=$(BINARY_ONLY) -e '.[dev]'
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

demo: install
	$(PY) examples/demo.py

bench: install
	$(PY) benchmarks/sim_validation.py
	$(PY) benchmarks/sim_throughput.py
	$(PY) benchmarks/embed_throughput.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache runs
