"""Test-session setup shared by every test (and by the nbval runs of notebooks/).

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

REPO = Path(__file__).resolve().parent.parent
# Fixture notebooks are inputs of tests, not lessons for nbval to check.
collect_ignore_glob = ["fixtures/*", "browser/fixtures/*"]


def make_data_dir(target: Path) -> Path:
    """A data folder like the repository's, safe to write into."""
    target.mkdir(parents=True, exist_ok=True)
    fm = target / "fashion-mnist"
    if not fm.exists():
        fm.symlink_to(REPO / "data" / "fashion-mnist", target_is_directory=True)
    for ckpt in (REPO / "data").glob("*.pt"):
        shutil.copy2(ckpt, target / ckpt.name)
    return target


def pytest_configure(config):
    if os.environ.get("KDLIB_TEST_DATA_READY") == "1":
        return
    tmp = Path(tempfile.mkdtemp(prefix="kdlib-test-data-"))
    os.environ["KDLIB_DATA"] = str(make_data_dir(tmp))
    os.environ.pop("KDLIB_RUN_DIR", None)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # two workers on two cores: one thread each for torch in the kernels they start
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    config._kdlib_tmp_data = tmp


def pytest_unconfigure(config):
    tmp = getattr(config, "_kdlib_tmp_data", None)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A private writable data folder for one test (sets $KDLIB_DATA)."""
    d = make_data_dir(tmp_path / "data")
    monkeypatch.setenv("KDLIB_DATA", str(d))
    return d
