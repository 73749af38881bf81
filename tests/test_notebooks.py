"""The stored notebooks follow DESIGN.md's rules, and each one runs through
papermill with tiny parameters (smoke runs). nbval (``--nbval-lax``) separately
re-runs the stored notebooks with their defaults."""

from __future__ import annotations

import json
import re
from pathlib import Path

import papermill as pm
import pytest

import kdlib.models
import kdlib.runs

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NAMES = [p.stem for p in NOTEBOOKS]

# Tiny parameters per notebook: enough to run every cell in seconds.
SMOKE = {
    "01_teacher": {"epochs": 1, "n_train": 2000, "channels": [8, 16], "hidden": 32,
                   "snapshot_epochs": [1]},
    "02_soft_targets": {"n_images": 200},
    "03_student_init": {"n_train": 2000, "epochs": 1, "seeds": 1},
    "04_loss_formulas": {"n_train": 2000, "epochs": 1, "student_epochs": 2, "pitfall_epochs": 1,
                         "pitfall_seeds": 1},
    "05_lambda_tuning": {"quick": True},
    "06_dark_knowledge": {"quick": True},
    "07_efficiency": {"quick": True},
    "08_fidelity": {"quick": True},
    "09_interpretability": {"quick": True},
    "10_other_students": {"quick": True},
}


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


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_smoke_run(path, tmp_path, data_dir):
    params = dict(SMOKE.get(path.stem, {}))
    if path.stem == "01_teacher":
        params["checkpoint"] = str(tmp_path / "teacher_smoke.pt")
    out = tmp_path / path.name
    kdlib.runs.execute_notebook(path, out, params)  # plain papermill: any error in a cell raises
    nb = json.loads(out.read_text())
    assert not any(o["output_type"] == "error" for c in code_cells(nb) for o in c["outputs"])
    if path.stem == "01_teacher":
        model = kdlib.models.load(params["checkpoint"])
        assert model.kd_meta["epochs"] == 1 and model.kd_meta["n_train"] == 2000
        assert model.kd_arch["kwargs"]["channels"] == [8, 16] and model.kd_meta["hidden"] == 32
        snapshot = kdlib.models.load(tmp_path / "teacher_smoke_epoch1.pt")
        assert snapshot.kd_meta["epoch"] == 1


def test_shipped_teacher_matches_notebook_01_defaults():
    """data/teacher.pt is what notebook 01 produces with its default parameters."""
    nb = pm.inspect_notebook(str(REPO / "notebooks" / "01_teacher.ipynb"))
    defaults = {k: json.loads(v["default"].replace("'", '"')) if v["default"][0] not in "'\"" else
                v["default"].strip("'\"") for k, v in nb.items()}
    payload = kdlib.models.load_checkpoint(REPO / "data" / "teacher.pt")
    for k in ("epochs", "n_train", "lr", "batch_size", "seed", "channels", "hidden", "label_smoothing",
              "snapshot_epochs"):
        assert payload["meta"][k] == defaults[k], k
    assert payload["meta"]["test_accuracy"] >= 0.88
