"""benchmarks/collection_runtime.py: the per-cell profile read from papermill's metadata."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "collection_runtime.py"
spec = importlib.util.spec_from_file_location("collection_runtime", SCRIPT)
collection_runtime = importlib.util.module_from_spec(spec)
spec.loader.exec_module(collection_runtime)


def _cell(kind, source, seconds=None):
    meta = {} if seconds is None else {"papermill": {"duration": seconds}}
    return {"cell_type": kind, "source": source, "metadata": meta}


NB = {"cells": [_cell("markdown", ["# title"]), _cell("code", ["import torch\n", "x = 1"], 1.5),
                _cell("code", ["train()"], 20.25), _cell("code", [], None),
                _cell("code", ["\n", "plot()  # a comment"], 0.5)]}


def test_slowest_cells_sorted_with_their_first_line():
    assert collection_runtime.slowest_cells(NB, 2) == [(20.25, 2, "train()"), (1.5, 1, "import torch")]
    assert collection_runtime.slowest_cells(NB, 10)[-2:] == [(0.5, 4, "plot()  # a comment"), (0.0, 3, "")]


def test_cell_seconds_adds_every_code_cell():
    assert collection_runtime.cell_seconds(NB) == pytest.approx(22.25)
