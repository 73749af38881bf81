# kdlab: every target sets up .venv by itself (pinned requirements.txt, kdlib installed editable).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kdlab-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]*_*.ipynb))
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
JOBS ?= 2

.PHONY: setup lab test test-fast run notebooks notebooks-all sweep sweep-dask present book html student teachers results clean

setup: $(STAMP)

# JupyterLab in .venv reads $(LAB_OVERRIDES) as its defaults: no "Would you like to get notified
# about official Jupyter news?" pop-up in class (the user's own ~/.jupyter settings are untouched).
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json

$(STAMP): requirements.txt pyproject.toml tools/jupyterlab-overrides.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	install -D -m 644 tools/jupyterlab-overrides.json $(LAB_OVERRIDES)
	@touch $@

## lab: open JupyterLab on notebooks/ (127.0.0.1, token authentication)
lab: $(STAMP)
	$(BIN)/jupyter lab --ip=127.0.0.1 --ServerApp.root_dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

## test: ruff + the whole pytest suite (units, nbval over every notebook, Dask, browser); prints the
## 20 slowest items. A file runs on one worker; the long ones start first (conftest.py: FILE_SECONDS).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder --durations=20 --nbval-lax --nbval-cell-timeout=900 \
		--nbval-sanitize-with tests/nbval_sanitize.cfg tests notebooks $(PYTEST_ARGS)

## test-fast: ruff + every test not marked slow (no training over ~2 s, no notebook or browser runs)
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -n $(JOBS) --dist loadfile --no-loadscope-reorder -m "not slow" tests $(PYTEST_ARGS)

## run: execute every notebook headless with papermill into build/ (defaults)
run: $(STAMP)
	@mkdir -p build
	@for nb in $(NOTEBOOKS); do \
		echo "== $$nb"; \
		$(BIN)/python -m kdlib.runs "$$nb" --execute "build/$$(basename $$nb)" || exit 1; \
	done

## notebooks: re-execute the stored notebooks 00 and 02-10 in place (outputs kept in git), with 2
## torch threads (a trained model's last digits depend on the thread count and the CPU; nbval checks
## only outputs that do not). Notebook 01 is left out: it retrains data/teacher.pt, which differs in
## its last digits on another CPU (README, Data); `make notebooks-all` re-executes it too.
REGEN := $(filter-out notebooks/01_%,$(NOTEBOOKS))
notebooks: $(STAMP)
	@for nb in $(REGEN); do \
		echo "== $$nb"; \
		OMP_NUM_THREADS=2 $(BIN)/python -m kdlib.runs "$$nb" --in-place || exit 1; \
	done

notebooks-all: REGEN := $(NOTEBOOKS)
notebooks-all: notebooks

## sweep: an example lambda x T sweep of notebook 05 with a plot of the summary
sweep: $(STAMP)
	$(BIN)/python -m kdlib.runs notebooks/05_lambda_tuning.ipynb \
		--grid lam=0.1,0.5,0.9 --grid T=2,4 --param quick=true --jobs $(JOBS) --out runs/lam_T
	$(BIN)/python -m kdlib.runs --plot runs/lam_T/summary.csv --x lam --y val_acc --hue T \
		--png runs/lam_T/summary.png

## sweep-dask: the same kind of sweep on a Dask cluster (scheduler + 2 workers on 127.0.0.1)
sweep-dask: $(STAMP)
	BIN=$(BIN) bash tools/sweep_dask.sh

## present: the explorers as a classroom app (Voilà, code hidden) on 127.0.0.1, token in the URL printed.
## It first runs the app once headless, so that 05's grid is trained (minutes, once) and cached in
## build/present-cache/ before anyone connects; no visitor's page trains.
PRESENT_PORT ?= 8866
present: $(STAMP)
	$(BIN)/python -m kdlib.runs apps/explorers.ipynb --execute build/present-warmup.ipynb
	$(BIN)/voila apps/explorers.ipynb --no-browser --Voila.ip=127.0.0.1 --port=$(PRESENT_PORT) \
		--token $(VOILA_ARGS)

## book: the stored notebooks as a static site that reads offline (Sphinx + MyST-NB, no execution):
## sidebar, previous/next, full-text search, plots, MathJax shipped inside; prints its index.html
book: $(STAMP)
	$(BIN)/python tools/build_book.py --out build/book

## html: the same as `make book` (the former one-page-per-notebook export, now with local maths)
html: book

## student: the student edition in build/student/: every notebook with its solutions removed (the
## nbgrader-marked answers become stubs, the <details> mark schemes go), the checks kept (they say "Not
## yet" on a stub), the exercise cells' outputs cleared (tools/student_edition.py; needs no nbgrader)
student: $(STAMP)
	$(BIN)/python tools/student_edition.py --out build/student

## teachers: the extra teachers notebook 06 compares and notebook 11's strong teacher: papermill runs
## of notebook 01 writing data/teacher_*.pt (skips existing ones; FORCE=1 reruns them); executed
## notebooks in build/teachers
teachers: $(STAMP)
	$(BIN)/python -c "from kdlib.lessons.lesson06_dark_knowledge import make_teachers; \
		print(make_teachers(force=$(if $(FORCE),True,False), executed_dir='build/teachers'))"
	$(BIN)/python -c "from kdlib.lessons.lesson11_budget_map import make_teachers; \
		print(make_teachers(force=$(if $(FORCE),True,False), executed_dir='build/teachers'))"

## results: notebook 11's budget map into data/results/budget_map.csv (+ .json provenance), in
## $(JOBS) worker processes; prints the time (17.9 min on 2 cores, Intel Xeon; 18.3 min on an AMD EPYC). QUICK=1: a tiny grid
## of seconds into build/results/ (what the slow test runs)
results: $(STAMP)
	$(BIN)/python -m kdlib.lessons.lesson11_budget_map --jobs $(JOBS) \
		$(if $(QUICK),--quick --out build/results/budget_map.csv)

clean:
	rm -rf build runs .pytest_cache .ruff_cache test-artifacts
	find . -name __pycache__ -not -path "./.venv/*" -prune -exec rm -rf {} +
