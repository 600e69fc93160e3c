# The course's two commands: `make book` and `make test` (see README.md).
# Both set up everything on a fresh machine: a virtual environment with the
# pinned PyTorch (unless a torch is already there), the course packages, the
# pinned site JavaScript, and the system tools the tests use.
#
# Which PyTorch build `pip install torch==2.13.0` gives depends on the platform:
# on Linux x86-64 the public index's wheel is the CUDA build (it pulls several GB
# of NVIDIA packages, and runs on the CPU too); on macOS and Windows it is the CPU
# build (on Apple silicon with MPS). TORCH_INDEX (empty by default) installs it
# from another index instead, e.g. the CPU-only build on Linux:
#   make env TORCH_INDEX=https://download.pytorch.org/whl/cpu
# or one CUDA version's build (an index such as .../whl/cu128; the install
# selector on pytorch.org lists those of each release).

PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
JOBS   ?= 2
TORCH_PIN := torch==2.13.0
TORCH_INDEX ?=

# nbgrader shells out to `alembic` and the book to `jupyter`: use the venv's.
export PATH := $(BIN):$(PATH)

.PHONY: all env js book pdf tex test test-fast lint release system clean help lab mutants gpu-check

help:
	@echo "make book     build the executed book into _build/html (strict, cached)"
	@echo "make pdf      the book as a PDF, _build/latex/book.pdf (same execution cache as make book)"
	@echo "make test     everything: lint, library, notebooks, autograder, book, PDF, browser"
	@echo "make lab      JupyterLab at the repository root: exercises/ and book/ chapters as notebooks"
	@echo "make release  regenerate exercises/ from solutions/ with nbgrader"
	@echo "make mutants  grade plausible wrong answers to every exercise: benchmarks/MUTATION.md"
	@echo "make gpu-check  on a CUDA machine: device tests, chapters 3, 4, 6 against the CPU: benchmarks/GPU_CHECK.md"
	@echo "make clean    remove build output (keeps the venv)"

all: book

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Install the pinned torch first, from TORCH_INDEX when that is set (see the top of
# this file), so that the course packages find it there and do not pull another.
$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(BIN)/python -c "import torch" 2>/dev/null || \
	  $(BIN)/pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH_PIN)
	$(BIN)/pip install --quiet -e ".[book,grade,dev]"
	touch $@

env: $(VENV)/.installed

# Pinned JavaScript (js/package-lock.json, with integrity hashes) served by the site.
vendor/.stamp: js/package.json js/package-lock.json scripts/vendor_assets.py | $(VENV)/.installed
	npm ci --prefix js --no-audit --no-fund --ignore-scripts --loglevel=error
	$(BIN)/python scripts/vendor_assets.py
	touch $@

js: vendor/.stamp

# Chromium (browser tests) and bubblewrap (the autograder's sandbox), from Debian.
system:
	@command -v chromium >/dev/null && command -v bwrap >/dev/null || { \
	  echo "installing chromium and bubblewrap with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium bubblewrap >/dev/null; }

# The PDF's TeX Live (XeLaTeX, latexmk, xindy), the GNU FreeFont faces that hold every
# character the book prints, and poppler's pdftotext for the PDF's test, from Debian.
TEX_PACKAGES := texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended \
  texlive-xetex latexmk xindy fonts-freefont-otf lmodern poppler-utils
tex:
	@command -v xelatex >/dev/null && command -v latexmk >/dev/null && command -v xindy >/dev/null \
	  && command -v pdftotext >/dev/null && fc-list | grep -q FreeSerif || { \
	  echo "installing TeX Live and fonts with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $(TEX_PACKAGES) >/dev/null; }

# ACTLAB_STATIC makes explorers render their static (HTML-surviving) view.
# jupyter-cache keys a chapter's outputs on its cells only, and Sphinx rereads only
# changed sources: when the library the chapters import changes, or the configuration
# a page reads when it runs (the introduction glues the repository's address from
# _config.yml through scripts/book_notebooks.py), drop both so that every chapter runs
# again.
_build/.library.stamp: $(shell find actlab -name '*.py') _config.yml scripts/book_notebooks.py
	rm -rf _build/.jupyter_cache _build/.doctrees _build/jupyter_execute
	mkdir -p _build && touch $@

book: env js _build/.library.stamp
	ACTLAB_STATIC=1 $(BIN)/jupyter-book build . -W -n --keep-going

# The same sources and execution cache as the web book (after `make book` nothing runs
# again); explorers appear as captioned frame grids (actlab/presentation/paper.py).
pdf: env js tex _build/.library.stamp
	ACTLAB_STATIC=1 $(BIN)/jupyter-book build . --builder pdflatex -W -n --keep-going

# The course in JupyterLab from its environment: exercises/ (graded notebooks, with
# nbgrader's Validate button) and book/ (chapters; right-click > Open With >
# Jupytext Notebook) in the file browser. Live explorers need no ACTLAB_STATIC.
lab: env
	env -u ACTLAB_STATIC $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
	  $(if $(filter 0,$(shell id -u)),--allow-root)

release: env
	$(BIN)/python -m autograder release

# Mutation testing of the graded notebooks (tests/autograder/test_mutation.py runs the same check).
mutants: env
	$(BIN)/python -m autograder.mutation --report benchmarks/MUTATION.md

# On a machine with a CUDA GPU: the tests marked `device`, chapters 3, 4 and 6 on
# CUDA against the CPU, and a short bench_step.py run; the report goes to
# benchmarks/GPU_CHECK.md. Without a GPU it says so and does nothing.
gpu-check: env
	$(BIN)/python scripts/gpu_check.py

lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@# The chapters are MyST notebooks: lint their code cells through jupytext.
	@for f in $$(grep -l '^kernelspec:' book/*.md); do \
	  $(BIN)/jupytext --quiet --to py:percent -o - $$f \
	    | $(BIN)/ruff check --quiet --stdin-filename $${f%.md}.py - || exit 1; \
	done
	$(BIN)/codespell book actlab autograder tests scripts solutions benchmarks docs README.md _config.yml

test: env system pdf book
	$(MAKE) lint
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup

test-fast: env
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup -m "not book and not browser"

clean:
	rm -rf _build vendor js/node_modules
