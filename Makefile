# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
# Binary wheels only for the compiled dependencies: a source build of pythia8mc takes 30+ minutes.
BINARY_ONLY := pythia8mc,fastjet,energyflow,wasserstein,numba,llvmlite,awkward-cpp,cramjam,xxhash,numpy,scipy,scikit-learn,matplotlib,torch,pyarrow,onnx,onnxruntime,ml-dtypes,protobuf,dask,distributed,psutil,msgpack,tornado
TORCH_VERSION := 2.13.0
# Where the CPU build of torch comes from when no local wheel has it (pip's --find-links): PyTorch's CPU
# index. For a CUDA build: make install TORCH_INDEX=https://download.pytorch.org/whl/cu126
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# Everything: the simulation, the EFP baseline, ONNX export, TensorBoard, Parquet output, the tests.
EXTRAS ?= sim,baselines,onnx,tensorboard,parquet,dev

.PHONY: install test test-fast demo bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, the CPU build: a local wheel if pip's --find-links has one, else TORCH_INDEX
	# (a plain `pip install torch` on Linux pulls GBs of CUDA packages)
	$(PIP) install -q --no-index torch==$(TORCH_VERSION) 2>/dev/null || \
	    $(PIP) install -q torch==$(TORCH_VERSION) --index-url $(TORCH_INDEX)
	# pyarrow < 19: the baselines extra keeps numpy 1 (energyflow -> wasserstein), newer pyarrow needs numpy 2
	$(PIP) install -q --only-binary=$(BINARY_ONLY) -e '.[$(EXTRAS)]' 'pyarrow<19'
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
