# The two commands of the README: `make sandbox` (the main job on the embedded default) and `make test`.
# Both bootstrap .venv on a fresh machine that has only Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help
help:
	@echo "make sandbox   run the control plane on an embedded API server (Ctrl-C to stop)"
	@echo "make test      lint (ruff), type-check (mypy), drift checks and all tests"
	@echo "make crds      regenerate charts/tksh/crds and docs/api-reference.md from the models"
	@echo "make realapi-bin  build (once) the real kube-apiserver + etcd of the real test tier"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required, found " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP)

.PHONY: sandbox
sandbox: $(STAMP)
	$(BIN)/tksh sandbox $(SANDBOX_ARGS)

.PHONY: crds
crds: $(STAMP)
	$(BIN)/tksh crds --write

.PHONY: realapi-bin
realapi-bin:
	hack/realapi/build.sh

.PHONY: lint
lint: $(STAMP)
	$(BIN)/ruff check operator tests $(wildcard bench)
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

# The long variants of the reliability suite (docs/reliability.md, marker reliability_long) add a few minutes:
# they run in CI (CI=true, as .ci/run sets it) or with RELIABILITY_LONG=1, and are left out otherwise.
RELIABILITY_MARK := $(if $(filter true 1,$(CI) $(RELIABILITY_LONG)),,-m "not reliability_long")

.PHONY: test
test: lint
	$(BIN)/python -m pytest $(RELIABILITY_MARK) $(PYTEST_ARGS)
