# trueval: `make train` and `make test` create the virtual environment on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help install train test test-fast tensorboard clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  pass arguments to train.py with ARGS, e.g. make train ARGS='model.depth=5 trainer.max_epochs=3'"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install trueval with its dependencies

train: $(STAMP) ## train the default experiment (MLP on the bundled digits) and test it
	$(BIN)/python train.py $(ARGS)

# two workers (pytest-xdist); --dist loadfile keeps a file's tests, and so its module-scoped trained
# runs, on one worker; --no-loadscope-reorder hands files out in collection order, which
# tests/conftest.py makes slow files first
test: $(STAMP) ## run the whole test suite (slow tests included)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder $(ARGS)

test-fast: $(STAMP) ## the tests not marked slow
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

tensorboard: $(STAMP) ## serve TensorBoard over logs/
	$(BIN)/tensorboard --logdir logs

clean: ## remove logs, caches and build artefacts (keeps .venv)
	rm -rf logs/* .cache .pytest_cache src/*.egg-info
	find . -name __pycache__ -prune -not -path './.venv/*' -exec rm -rf {} +
	@touch logs/.gitkeep
