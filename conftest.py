"""Test-session setup shared by every test and by the nbval runs of notebooks/.

It sits at the repository root so that it applies to both: a conftest under tests/ would
not see nbval's items under notebooks/ (nor run at all for `pytest notebooks/...`).

Notebooks save checkpoints into the data folder; tests must never change
tracked files, so the whole session points ``$KDLIB_DATA`` at a temporary folder
that links the shipped Fashion-MNIST files and copies the shipped checkpoints.
Kernels started by nbval and papermill inherit this environment.
"""

from __future__ import annotations

import ast
import os
import shutil
import tempfile
from pathlib import Path

import nbval.plugin
import papermill
import pytest
import torch
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

import kdlib.models
from kdlib.data import scratch_data_dir

# The one execution of each notebook per `make test` is nbval's, with these parameters injected
# as papermill would (a notebook not listed runs with its defaults). They are chosen so that every
# `# NBVAL_CHECK_OUTPUT` cell prints what the stored run (defaults) printed: formulas on fixed
# tensors, parameter counts, exercise prompts and checks. That run checks that every cell runs
# without error, that the checked cells print the stored output, and that notebook 01 saves its
# teacher with the parameters it ran with. The stored notebooks are the record of the default
# runs (`make notebooks`; tests/test_notebooks.py checks they hold no error). 05 runs quick: its
# checked cells are the label-smoothing identity on fixed tensors and an exercise prompt; its
# verdicts are rendered prose of the default run (say_*), not checked digits.
TEST_PARAMS = {
    "01_teacher": {"epochs": 1, "n_train": 2000, "snapshot_epochs": [1]},
    "03_student_init": {"n_train": 2000, "epochs": 1, "seeds": 2, "long_epochs": 2},
    "04a_article_formulas": {"epochs": 1, "student_epochs": 2},
    "04b_correct_loss": {"student_epochs": 2, "pitfall_epochs": 1, "pitfall_seeds": 2, "seeds": 2,
                         "compare_epochs": 1},
    "05_lambda_tuning": {"quick": True},
    "06_dark_knowledge": {"n_train": 500, "epochs": 3, "seeds": 2},
    "07_efficiency": {"n_train": 500, "epochs": 2, "seeds": 2, "repeats": 5},
    "08_fidelity": {"quick": True},
    "09_interpretability": {"quick": True},
    "10_other_students": {"quick": True},
    "11_budget_map": {"quick": True},
}


class _ParameterizedReads:
    """nbval's view of nbformat: a notebook under notebooks/ is read with :data:`TEST_PARAMS`
    injected (papermill's parameters cell, without outputs, so nbval checks nothing in it)."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def read(self, path, *args, **kwargs):
        params = TEST_PARAMS.get(Path(path).stem) if Path(path).parent.name == "notebooks" else None
        if not params:
            return self._real.read(path, *args, **kwargs)
        return parameterize_notebook(load_notebook_node(str(path)), params)  # as papermill reads it


nbval.plugin.nbformat = _ParameterizedReads(nbval.plugin.nbformat)

# `make test` runs `pytest -n 2 --dist loadfile --no-loadscope-reorder`: each file (a notebook's
# nbval cells share one kernel) runs on one xdist worker, and files start in collection order,
# which pytest_collection_modifyitems sets: the files listed here first, longest first, so that
# no long file starts last and both workers finish together. Seconds from `make test
# --durations` on the 2-core development machine (one core per worker); the other files follow
# in collection order. (--dist loadgroup would spread single tests too, but pytest-xdist 3.8
# cannot apply xdist_group marks under pytest 9.2, which computes node ids from a new field.)
FILE_SECONDS = {
    "test_runs.py": 100, "05_lambda_tuning.ipynb": 20, "test_grids.py": 60, "test_lab_sliders.py": 45,
    "test_lab_news.py": 45, "test_slides.py": 50, "test_present.py": 35, "test_book.py": 25,
    "03_student_init.ipynb": 15,
    "10_other_students.ipynb": 15, "test_student_edition.py": 40,
    "09_interpretability.ipynb": 12, "04b_correct_loss.ipynb": 10, "04a_article_formulas.ipynb": 5,
    "01_teacher.ipynb": 10,
    "11_budget_map.ipynb": 15, "test_prose.py": 60,
}

# Fixture notebooks are inputs of tests, not lessons for nbval to check.
collect_ignore_glob = ["tests/fixtures/*", "tests/browser/fixtures/*"]


def _own_cores() -> list[int]:
    """The cores this pytest process may use: all of them, or an xdist worker's share.

    ``pytest -n W`` on C cores gives worker ``gwK`` the cores ``K, K + W, ...`` (at least one).
    Each worker, the kernels nbval starts from it and the processes those spawn then compute
    on their own cores: two workers never fight over one core (oversubscribed torch threads
    made a notebook several times slower).
    """
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    worker, count = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not cores or not worker.startswith("gw") or not count:
        return cores
    k, w = int(worker[2:]), int(count)
    return cores[k % w::w] or cores[k % len(cores):k % len(cores) + 1]


def pytest_configure(config):
    tmp = Path(tempfile.mkdtemp(prefix="kdlib-test-data-"))
    os.environ["KDLIB_DATA"] = str(scratch_data_dir(tmp))
    os.environ.pop("KDLIB_RUN_DIR", None)
    cores = _own_cores()
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)  # inherited by kernels, worker pools, servers, browsers
        # No check compares digits that depend on the thread count (DESIGN, Testing): one
        # thread per core this process owns, here and in every kernel it starts.
        os.environ["OMP_NUM_THREADS"] = str(len(cores))
        torch.set_num_threads(len(cores))
    config._kdlib_tmp_data = tmp


def pytest_unconfigure(config):
    tmp = getattr(config, "_kdlib_tmp_data", None)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


NBVAL_OUTPUT_TIMEOUT = 120  # seconds


def pytest_collection_modifyitems(config, items):
    """Slow marks, nbval's output timeout, and the order the files start in.

    nbval cells (notebooks/) and browser tests are slow by nature: ``make test-fast`` skips
    them. nbval waits only 5 s for each output message after a cell's reply; a cell that
    streams many live-plot updates (notebook 01's training curves) on a busy core can lag
    behind by more, which is no failure of the notebook: give each message two minutes.
    The files of :data:`FILE_SECONDS` are moved to the front, longest first (a stable sort:
    a notebook's cells keep their order), so that no long file starts last.
    """
    for item in items:
        if item.get_closest_marker("browser") or "notebooks" in item.path.parts:
            item.add_marker(pytest.mark.slow)
        if hasattr(item, "output_timeout"):
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT
    items.sort(key=lambda it: -FILE_SECONDS.get(it.path.name, 0))


def _check_saved_teacher(saved: Path, notebook: Path) -> None:
    """The checkpoint notebook 01 just saved records the parameters it ran with."""
    params = papermill.inspect_notebook(str(notebook))
    defaults = {k: ast.literal_eval(v["default"]) for k, v in params.items()}
    defaults.update(TEST_PARAMS.get(notebook.stem, {}))
    meta = kdlib.models.load_checkpoint(saved)["meta"]
    meta.setdefault("augment", False)  # recorded only when true (the default checkpoint's bits stay)
    wrong = {k: (meta.get(k), v) for k, v in defaults.items() if k != "checkpoint" and meta.get(k) != v}
    assert not wrong, f"notebook 01 saved {saved.name} with other parameters than it ran with: {wrong}"


def pytest_runtest_teardown(item, nextitem):
    """After nbval runs a cell of notebook 01, check what it saved and put the shipped checkpoints back.

    Notebook 01 saves the teacher it trains into the session's data folder, with its
    parameters in the checkpoint (checked here, once it has saved). The other notebooks'
    stored outputs were computed with the shipped ``data/teacher.pt``, and a teacher trained
    on another CPU differs in its last digits: copying ~1 MB per cell keeps every later
    notebook on this worker on the shipped teacher.
    """
    if item.path.name == "01_teacher.ipynb" and "KDLIB_DATA" in os.environ:
        data = Path(os.environ["KDLIB_DATA"])
        shipped = Path(__file__).resolve().parent / "data"
        saved = data / "teacher.pt"
        try:
            if saved.is_file() and saved.read_bytes() != (shipped / "teacher.pt").read_bytes():
                _check_saved_teacher(saved, item.path)
        finally:
            for ckpt in shipped.glob("*.pt"):
                shutil.copy2(ckpt, data / ckpt.name)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A private writable data folder for one test (sets $KDLIB_DATA)."""
    d = scratch_data_dir(tmp_path / "data")
    monkeypatch.setenv("KDLIB_DATA", str(d))
    return d
