"""The student edition (tools/student_edition.py, ``make student``).

The source notebooks mark solutions in nbgrader's format: a code cell's reference answer,
commented so that the stored run keeps its placeholder, between ``### BEGIN SOLUTION`` and
``### END SOLUTION``; a markdown ``<details>`` solution between ``BEGIN MARK SCHEME`` and
``END MARK SCHEME`` HTML comments in a task cell. Checked here: the marks follow nbgrader's
metadata rules; no solution text survives in the student edition; and one papermill run per
notebook (quick parameters) in which every student cell runs and, after each stub, the same
cell filled with the reference answer prints "Right".
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
from pathlib import Path

import papermill as pm
import pytest

REPO = Path(__file__).resolve().parent.parent
# conftest.py's quick parameters, read from its source (a bare `import conftest` can find tests/browser's
# under xdist, and executing the root one again would patch nbval twice)
TEST_PARAMS = next(ast.literal_eval(node.value) for node in ast.parse((REPO / "conftest.py").read_text()).body
                   if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "TEST_PARAMS")
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NAMES = [p.stem for p in NOTEBOOKS]

_spec = importlib.util.spec_from_file_location("student_edition", REPO / "tools" / "student_edition.py")
se = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(se)


def source(cell) -> str:
    return "".join(cell["source"])


def load(path):
    return json.loads(Path(path).read_text())


def solution_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code" and se.BEGIN_SOLUTION in source(c)]


def reference(block: str) -> str:
    """A solution block as code: its lines are the reference answer commented with '# '."""
    lines = block.split("\n")
    assert all(ln == "#" or ln.startswith("# ") for ln in lines), block
    return "\n".join(ln[2:] for ln in lines)


def outputs_text(cell) -> str:
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_marks_follow_nbgrader(path):
    """nbgrader's v3 rules: ids unique, points on graded cells, a solution region only in a
    solution cell, a mark scheme only in a (markdown) task cell, every <details> marked."""
    nb, ids = load(path), set()
    for cell in nb["cells"]:
        meta, src = cell["metadata"].get("nbgrader"), source(cell)
        if se.BEGIN_SOLUTION in src:
            assert meta and meta["solution"] and cell["cell_type"] == "code", src[:80]
            assert se.solution_blocks(src) and all(reference(b) for b in se.solution_blocks(src))
        if "<details" in src:
            assert src.count("<details") == len(se.mark_schemes(src)), f"{path.name}: unmarked solution"
            assert all("<details" in m for m in se.mark_schemes(src))
            assert meta and meta.get("task") and cell["cell_type"] == "markdown"
        if not meta:
            continue
        assert meta["schema_version"] == 3 and meta["grade_id"] not in ids
        ids.add(meta["grade_id"])
        if meta["grade"]:
            assert "points" in meta
        if meta["solution"]:
            assert se.BEGIN_SOLUTION in src, f"{path.name}: solution cell without a solution region"
        if meta.get("task"):
            assert not meta["grade"] and not meta["solution"] and "points" in meta


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_no_solution_survives(path):
    nb = load(path)
    student = se.student_notebook(nb, path.name)
    text = "\n".join(source(c) for c in student["cells"])
    hidden, public = [], set()  # public: lines of the cells that hold no solution (a stub's signature)
    for cell in nb["cells"]:
        src = source(cell)
        found = se.solution_blocks(src) if cell["cell_type"] == "code" else se.mark_schemes(src)
        hidden += found
        if not found:
            public.update(ln.strip() for ln in src.split("\n"))
    assert hidden or "<details" not in json.dumps(nb)
    for block in hidden:
        assert block not in text
        for line in block.split("\n"):  # every distinctive line of it, wherever it would be
            if len(line.strip()) >= 25 and line.strip() not in public:
                assert line.strip() not in text, f"{path.name}: solution text survives: {line.strip()}"
    assert "<details" not in text and "BEGIN SOLUTION" not in text and "MARK SCHEME" not in text
    for cell, orig in zip(student["cells"], nb["cells"], strict=True):
        if orig in solution_cells(nb):
            assert cell["outputs"] == [] and cell["execution_count"] is None
            assert se.CODE_STUB in source(cell)
        else:
            assert cell.get("outputs") == orig.get("outputs")  # the stored outputs a learner reads


def test_tool_writes_every_notebook(tmp_path):
    assert se.main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in NOTEBOOKS]


def test_tool_stubs_and_refuses_unmarked():
    cell = {"cell_type": "code", "metadata": {}, "outputs": [{"output_type": "stream", "text": "x"}],
            "execution_count": 3,
            "source": ["def f():\n", "    ### BEGIN SOLUTION\n", "    # return 1\n", "    ### END SOLUTION\n",
                       "    return 0"]}
    out = se.student_notebook({"cells": [cell]})["cells"][0]
    assert source(out) == "def f():\n    # YOUR CODE HERE\n    return 0"
    assert out["outputs"] == [] and out["execution_count"] is None
    md = {"cell_type": "markdown", "metadata": {}, "source": ["Q\n", "<details>A</details>"]}
    with pytest.raises(ValueError, match="outside a mark scheme"):
        se.student_notebook({"cells": [md]})
    md["source"] = ["Q\n", "<!-- === BEGIN MARK SCHEME === -->\n", "<details>A</details>\n"]
    with pytest.raises(ValueError, match="without"):
        se.student_notebook({"cells": [md]})


def filled_twin(student: dict, nb: dict) -> tuple[dict, list[int], list[int]]:
    """The student notebook with, after each stubbed cell, a copy filled with the reference
    answers of the source's solution blocks; returns it and the stub and filled cell indices."""
    twin, stubs, filled = dict(student, cells=[]), [], []
    for cell, orig in zip(student["cells"], nb["cells"], strict=True):
        twin["cells"].append(cell)
        blocks = se.solution_blocks(source(orig)) if orig["cell_type"] == "code" else []
        if not blocks:
            continue
        stubs.append(len(twin["cells"]) - 1)
        code = source(cell)
        for block in blocks:
            indent = re.search(rf"(?m)^([ \t]*){re.escape(se.CODE_STUB)}$", code).group(1)
            answer = "\n".join(indent + ln if ln else ln for ln in reference(block).split("\n"))
            code = re.sub(rf"(?m)^[ \t]*{re.escape(se.CODE_STUB)}$", lambda _, a=answer: a, code, count=1)
        twin["cells"].append(dict(cell, id=f"{cell.get('id', 'cell')}-filled", source=se._lines(code)))
        filled.append(len(twin["cells"]) - 1)
    return twin, stubs, filled


# A representative subset by default (the suite stays ~5 min on 2 cores): the notebooks whose quick run
# is short. KDLIB_STUDENT_ALL=1 runs every notebook with solution blocks (03, 09 and 10 add ~1-2 min each
# on a busy 2-core machine; all 8 passed when this test was written).
QUICK_RUNS = {"00_start_here", "02_soft_targets", "06_dark_knowledge", "07_efficiency", "08_fidelity"}
RUN = [p for p in NOTEBOOKS if solution_cells(load(p))
       and (p.stem in QUICK_RUNS or os.environ.get("KDLIB_STUDENT_ALL") == "1")]


@pytest.mark.slow
@pytest.mark.parametrize("path", RUN, ids=[p.stem for p in RUN])
def test_student_notebook_runs_and_reference_answers_are_right(path, tmp_path):
    """One papermill run per notebook, quick parameters: every student cell runs without error
    (a stub's check says "Not yet"), and the stub filled with the reference answer says "Right"."""
    nb = load(path)
    twin, stubs, filled = filled_twin(se.student_notebook(nb, path.name), nb)
    assert filled
    src = tmp_path / path.name
    src.write_text(json.dumps(twin, indent=1, ensure_ascii=False) + "\n")
    params = dict(TEST_PARAMS.get(path.stem, {}))
    if path.stem == "01_teacher":
        params["checkpoint"] = str(tmp_path / "teacher.pt")  # the session's shipped teacher stays
    ran = pm.execute_notebook(str(src), str(tmp_path / f"out_{path.name}"), parameters=params,
                              cwd=str(tmp_path), progress_bar=False, kernel_name="python3")
    injected = sum(1 for c in ran["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    cells = ran["cells"]
    for i in stubs:
        assert "Right" not in outputs_text(cells[i + injected]), source(cells[i + injected])
    for i in filled:
        out = outputs_text(cells[i + injected])
        assert "Right" in out and "Not yet" not in out, (source(cells[i + injected]), out)
