# layerbraid: the commands a newcomer needs. A clean checkout needs nothing else:
#   make demo   set up .venv, train a layer-parallel ResNet on Peaks under mpiexec -n 2
#   make test   set up .venv, build, run the C tests (normal and sanitizer builds), then pytest

SHELL      := /bin/bash
PYTHON     ?= python3
VENV       := .venv
VPY        := $(VENV)/bin/python
STAMP      := $(VENV)/.layerbraid-installed
# make demo needs only the package, not the test extra (torch, ...): its own stamp
DEMO_STAMP := $(VENV)/.layerbraid-installed-demo
NPROC      := $(shell nproc 2>/dev/null || echo 2)
BUILD      := build
ASAN_BUILD := build/asan
SMPI_BUILD := build/smpi
SANITIZE   ?= address,undefined

# Everything the pip build of the Python package reads; a change re-runs pip install -e.
INSTALL_DEPS := pyproject.toml CMakeLists.txt $(wildcard cmake/*) \
  $(shell find cpp python extern -type f -not -path '*/__pycache__/*' -not -name '*.pyc' 2>/dev/null)

# Ninja when there is one, but never switch the generator of an existing build tree.
NINJA     := $(shell command -v ninja 2>/dev/null)
generator  = $(if $(wildcard $(1)/CMakeCache.txt),,$(if $(NINJA),-G Ninja,))
CMAKE_MPI := -DPython_EXECUTABLE=$(CURDIR)/$(VPY)

.DEFAULT_GOAL := help
.PHONY: help venv examples ctest asan test demo scaling clean distclean

help:
	@echo "make demo       set up .venv (pip install -e . only), train a ResNet on Peaks"
	@echo "                layer-parallel (mpiexec -n 2)"
	@echo "make test       venv + examples + ctest + asan + pytest (what CI runs)"
	@echo "make venv       create .venv and pip install -e '.[test]' (only when sources changed)"
	@echo "make examples   plain CMake build into $(BUILD)/ (C library, examples, C tests)"
	@echo "make ctest      run the C tests of $(BUILD)/"
	@echo "make asan       sanitizer build ($(SANITIZE)) in $(ASAN_BUILD)/ and its C tests"
	@echo "make scaling    speedup on simulated clusters (SimGrid SMPI, issue 16): builds"
	@echo "                propagate/train_peaks ($(BUILD)/) and $(SMPI_BUILD)/, runs"
	@echo "                benchmarks/scaling/run.py (resumable; SCALING_ARGS=--quick etc.)"
	@echo "make clean      remove build/ ;  make distclean: also .venv"

venv: $(STAMP)

$(STAMP): $(INSTALL_DEPS)
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q -e ".[test]"
	touch $@ $(DEMO_STAMP)

# The demo's environment: the package and its run-time dependencies, no test extra. Up to date
# after a make venv too (that installs the package as well); the same sources trigger it.
$(DEMO_STAMP): $(INSTALL_DEPS)
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q -e .
	touch $@

examples: $(STAMP)
	cmake -S . -B $(BUILD) $(call generator,$(BUILD)) $(CMAKE_MPI)
	cmake --build $(BUILD) -j $(NPROC)

ctest: examples
	ctest --test-dir $(BUILD) --output-on-failure --no-tests=error -j $(NPROC)

# Sanitizer build; LeakSanitizer is on in its tests (options and tests/c/lsan.supp set by CMake).
asan: $(STAMP)
	cmake -S . -B $(ASAN_BUILD) $(call generator,$(ASAN_BUILD)) $(CMAKE_MPI) \
	  -DCMAKE_BUILD_TYPE=Debug -DLAYERBRAID_SANITIZE=$(SANITIZE)
	cmake --build $(ASAN_BUILD) -j $(NPROC)
	ctest --test-dir $(ASAN_BUILD) --output-on-failure --no-tests=error -j $(NPROC)

test: venv examples ctest asan
	$(VPY) -m pytest -q tests

# The main job: layer-parallel (one-shot) training on Peaks, the paper's reference problem,
# with the 30 layers split over 2 ranks, their solves in C++ (--native; drop it for the NumPy
# callbacks: same numbers, slower); prints the accuracy and where the plots went.
DEMO_OUT ?= runs/demo
demo: $(DEMO_STAMP)
	@set -e; mpiexec="$$($(VPY) -c 'import layerbraid; print(layerbraid.find_mpiexec())')"; \
	set -x; \
	"$$mpiexec" -n 2 $(VPY) -m layerbraid.cli train --dataset peaks --layers 30 --width 8 \
	  --method one-shot --mgrit-iters 2 --optimizer lbfgs --epochs 130 --native --out $(DEMO_OUT)

# Issue 16: layer-parallel speedup on simulated clusters (needs SimGrid's smpirun). The real
# build gives the cost tables, the iteration counts and the training run; the SMPI build runs
# the modelled propagations. Cases already in benchmarks/results/scaling.json are skipped.
SCALING_ARGS ?=
scaling: $(STAMP)
	cmake -S . -B $(BUILD) $(call generator,$(BUILD)) $(CMAKE_MPI)
	cmake --build $(BUILD) -j $(NPROC) --target propagate train_peaks
	cmake -S . -B $(SMPI_BUILD) $(call generator,$(SMPI_BUILD)) $(CMAKE_MPI) -DLAYERBRAID_SMPI=ON
	cmake --build $(SMPI_BUILD) -j $(NPROC) --target propagate
	$(VPY) benchmarks/scaling/run.py --real-build $(BUILD) --smpi-build $(SMPI_BUILD) $(SCALING_ARGS)
	$(VPY) benchmarks/scaling/plan_check.py

clean:
	rm -rf $(BUILD)

distclean: clean
	rm -rf $(VENV) .pytest_cache
