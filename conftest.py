"""Test-session setup shared by every test and by the nbval runs of notebooks/.

It sits at the repository root so that it applies to both: a conftest under tests/ would
not see nbval's items under notebooks/ (nor run at all for `pytest notebooks/...`).

Notebooks save checkpoints into the data folder; tests must never change
tracked files, so the whole session points ``$KDLIB_DATA`` at a temporary folder
that links the shipped Fashion-MNIST files and copies the shipped checkpoints.
Kernels started by nbval and papermill inherit this environment.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from kdlib.data import scratch_data_dir

NOTEBOOK_THREADS = "2"  # the Makefile's `notebooks` target uses the same

# Fixture notebooks are inputs of tests, not lessons for nbval to check.
collect_ignore_glob = ["tests/fixtures/*", "tests/browser/fixtures/*"]


def pytest_configure(config):
    tmp = Path(tempfile.mkdtemp(prefix="kdlib-test-data-"))
    os.environ["KDLIB_DATA"] = str(scratch_data_dir(tmp))
    os.environ.pop("KDLIB_RUN_DIR", None)
    # Kernels started by nbval and papermill compute with the thread count that `make
    # notebooks` stored the outputs with: float sums (and so the last digits of a trained
    # model's numbers) depend on how a reduction is split across threads.
    os.environ["OMP_NUM_THREADS"] = NOTEBOOK_THREADS
    config._kdlib_tmp_data = tmp


def pytest_unconfigure(config):
    tmp = getattr(config, "_kdlib_tmp_data", None)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


NBVAL_OUTPUT_TIMEOUT = 120  # seconds


def pytest_collection_modifyitems(config, items):
    """nbval cells (notebooks/) and browser tests are slow by nature: ``make test-fast`` skips them.

    nbval waits only 5 s for each output message after a cell's reply; a cell that streams
    many live-plot updates (notebook 01's training curves) on two busy cores can lag behind
    by more, which is no failure of the notebook: give each message two minutes.
    """
    for item in items:
        if item.get_closest_marker("browser") or "notebooks" in item.path.parts:
            item.add_marker(pytest.mark.slow)
        if hasattr(item, "output_timeout"):
            item.output_timeout = NBVAL_OUTPUT_TIMEOUT


def pytest_runtest_teardown(item, nextitem):
    """After nbval runs a cell of notebook 01, put the shipped checkpoints back.

    Notebook 01 saves the teacher it trains into the session's data folder; the other
    notebooks' stored outputs were computed with the shipped ``data/teacher.pt``, and a
    teacher trained on another CPU differs in its last digits. Copying ~1 MB per cell
    keeps every later notebook on the shipped teacher, whatever order xdist picks.
    """
    if item.path.name == "01_teacher.ipynb" and "KDLIB_DATA" in os.environ:
        for ckpt in (Path(__file__).resolve().parent / "data").glob("*.pt"):
            shutil.copy2(ckpt, Path(os.environ["KDLIB_DATA"]) / ckpt.name)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A private writable data folder for one test (sets $KDLIB_DATA)."""
    d = scratch_data_dir(tmp_path / "data")
    monkeypatch.setenv("KDLIB_DATA", str(d))
    return d
