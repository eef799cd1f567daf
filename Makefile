# dinov3_mm: two entry points, both documented in README.md.
#   make demo   set up .venv, then generate the shapes dataset, train, test
#               and predict with a classifier (work_dirs/demo)
#   make test   set up .venv, then run the whole test suite (core and the
#               domain plugins under projects/) on 2 workers
# The virtualenv lives in ./.venv. torch==2.13.0 is installed only when the
# venv has no torch at all, so a machine's own (e.g. CUDA) torch is kept.
# `pip install -e '.[dev]'` (plus the `lite` extra, mmcv-lite, when the venv
# has no mmcv yet) and the plugins' editable installs are re-run only when
# setup.py, requirements/ or a plugin's pyproject.toml change (stamp file). `make test` also swaps mmcv-lite for mmcv 2.1.0 built
# with its compiled ops (mmseg decode heads need them): about 11 minutes on
# 2 cores the first time, then pip's wheel cache makes it seconds.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_VERSION := 2.13.0
STAMP := $(VENV)/.dinov3_mm-dev-installed
MMCV_STAMP := $(VENV)/.mmcv-ops-installed
MMCV_VERSION := 2.1.0
# Domain plugins (projects/<name>), installed editable next to the core.
PLUGINS := projects/medical projects/satellite projects/industrial
DEPS := setup.py $(wildcard requirements/*.txt) $(wildcard projects/*/pyproject.toml)

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1

.PHONY: demo test docs-check

DEMO_CFG := configs/demo/convnext_shapes.py
DEMO_DIR := work_dirs/demo

demo: $(STAMP)
	$(PY) tools/generate_shapes_dataset.py data/shapes
	$(PY) tools/train.py $(DEMO_CFG) --work-dir $(DEMO_DIR)
	$(PY) tools/test.py $(DEMO_CFG) $$(cat $(DEMO_DIR)/last_checkpoint) --work-dir $(DEMO_DIR)
	$(PY) tools/infer.py $(DEMO_CFG) $$(cat $(DEMO_DIR)/last_checkpoint) data/shapes/test --out $(DEMO_DIR)/predictions.csv
	$(PY) tools/analysis/feature_demo.py --out $(DEMO_DIR)/features
	@echo "Metrics: above (Epoch(test)); plots: $(DEMO_DIR)/plots/{val,test}/*.png and $(DEMO_DIR)/plots/training_curves.png; predictions: $(DEMO_DIR)/predictions.csv"

test: $(STAMP) $(MMCV_STAMP)
	$(PY) -m pytest -n 2 tests projects

# Every command of README.md, the project READMEs and docs/writing_plugins.md
# run (on tiny settings) or listed with the reason it is not: a few minutes.
docs-check: $(STAMP) $(MMCV_STAMP)
	$(PY) -m pytest -n 2 -m readme_walk tests/docs

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(DEPS) | $(PY)
	@if ! $(PY) -c 'import torch' >/dev/null 2>&1; then \
		echo "torch is missing in $(VENV): installing torch==$(TORCH_VERSION)"; \
		$(PY) -m pip install 'torch==$(TORCH_VERSION)'; \
	fi
	@if $(PY) -c 'import mmcv' >/dev/null 2>&1; then \
		$(PY) -m pip install -e '.[dev]'; \
	else \
		$(PY) -m pip install -e '.[dev,lite]'; \
	fi
	$(PY) -m pip install --no-build-isolation $(addprefix -e ,$(PLUGINS))
	@touch $@

# mmcv's setup.py needs setuptools<70 and the installed torch (no build
# isolation), and ninja to compile in parallel; torch's own pin
# (setuptools>=77) is restored afterwards.
$(MMCV_STAMP): $(STAMP)
	@if ! $(PY) -c 'import mmcv.ops' >/dev/null 2>&1; then \
		echo "installing mmcv==$(MMCV_VERSION) with compiled ops (first build about 11 min)"; \
		$(PY) -m pip uninstall -y mmcv-lite && \
		$(PY) -m pip install 'setuptools<70' ninja && \
		MMCV_WITH_OPS=1 MAX_JOBS=$$(nproc) $(PY) -m pip install --no-build-isolation 'mmcv==$(MMCV_VERSION)' && \
		$(PY) -m pip install 'setuptools>=77.0.3' || exit 1; \
	fi
	@touch $@
