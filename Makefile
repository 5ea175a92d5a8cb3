# hamdesign: every install step lives here, so a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.hamdesign-installed

.PHONY: install demo test test-fast bench docs cli-docs clean

# torch==2.13.0 first: a CPU wheel is on disk; an unpinned torch would pull several GB of CUDA packages.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[all,test,bench]"
	touch $(STAMP)

install: $(STAMP)

# The main job: rediscover the Haldane model by inverse design, then re-evaluate the designed model
# on every backend (same numbers everywhere). Results and figures land in results/demo-haldane/.
demo: $(STAMP)
	$(BIN)/hamdesign backends
	$(BIN)/hamdesign --backend jax design haldane --out results/demo-haldane
	for backend in jax torch autograd numpy; do \
	  $(BIN)/hamdesign --backend $$backend evaluate results/demo-haldane/model.toml --observable hall --nk 100 --beta 200 --mu 0 || exit 1; \
	done

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	cd asv_bench && ../$(BIN)/asv machine --yes >/dev/null && ../$(BIN)/asv run --python=same --quick --show-stderr

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

# Regenerates the reference section of docs/cli.md from the Typer app (tests/test_cli_docs.py fails when it is stale).
cli-docs: $(STAMP)
	$(BIN)/python -m hamdesign.cli_docs docs/cli.md

clean:
	rm -rf $(VENV) build dist src/*.egg-info .asv site
