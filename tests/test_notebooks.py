"""The stored notebooks follow DESIGN.md's rules.

Each notebook is executed once per ``make test``: by nbval (``--nbval-lax``), on one xdist
worker, with the small parameters of ``conftest.TEST_PARAMS`` injected as papermill would
(05 runs with its defaults). That one run checks that every cell runs without error, that the
``# NBVAL_CHECK_OUTPUT`` cells print what the stored notebook printed, and that notebook 01
saves its teacher with the parameters it ran with (conftest.py). The stored notebooks are the
record of the default runs: the tests below check that they hold no error, run top to bottom.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import papermill as pm
import pytest

import kdlib.models

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
NAMES = [p.stem for p in NOTEBOOKS]


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_stored_notebook_rules(path):
    nb = json.loads(path.read_text())
    cells = code_cells(nb)
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: re-run top to bottom (make notebooks)"
    for c in cells:
        for o in c["outputs"]:
            assert o["output_type"] != "error", f"{path.name} stores an error"  # none, tagged or not
            assert "image/svg+xml" not in o.get("data", {}), f"{path.name} stores an SVG plot"
    assert any(o.get("data", {}).get("image/png") for c in cells for o in c["outputs"]) or \
        path.stem == "00_start_here", f"{path.name} has no plot"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem != "00_start_here"],
                         ids=[n for n in NAMES if n != "00_start_here"])
def test_parameters_cell(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    lines = [ln for ln in "".join(tagged[0]["source"]).splitlines() if ln.strip()]
    assert lines
    for ln in lines:
        assert re.match(r"^\w+: [\w\[\], ]+ = .+  # \S", ln), \
            f"{path.name}: '{ln}' needs 'name: type = value  # comment'"
    # papermill sees every parameter with its type and help text
    params = pm.inspect_notebook(str(path))
    assert set(params) == {ln.split(":")[0] for ln in lines}
    assert all(p["help"] for p in params.values())


def test_start_here_has_no_parameters():
    nb = json.loads((REPO / "notebooks" / "00_start_here.ipynb").read_text())
    assert not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"])


def test_shipped_teacher_matches_notebook_01_defaults():
    """data/teacher.pt is what notebook 01 produces with its default parameters."""
    nb = pm.inspect_notebook(str(REPO / "notebooks" / "01_teacher.ipynb"))
    defaults = {k: ast.literal_eval(v["default"]) for k, v in nb.items()}
    payload = kdlib.models.load_checkpoint(REPO / "data" / "teacher.pt")
    for k in ("epochs", "n_train", "lr", "batch_size", "seed", "channels", "hidden", "label_smoothing",
              "snapshot_epochs"):
        assert payload["meta"][k] == defaults[k], k
    assert payload["meta"]["test_accuracy"] >= 0.88
