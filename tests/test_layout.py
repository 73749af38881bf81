"""The package layout that kdlib/__init__.py describes, checked on the source itself.

One lesson module per notebook; core never imports lessons; lessons never import each
other; imports between kdlib modules sit at the top of files and form no cycle.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
KDLIB = REPO / "kdlib"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LESSONS = sorted((KDLIB / "lessons").glob("lesson*.py"))


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


MODULES = {module_name(p): p for p in KDLIB.rglob("*.py")}


def kdlib_imports(path: Path):
    """(imported kdlib module, at top level?) for every import of a kdlib module in ``path``."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.startswith("kdlib"):
                # `from kdlib import data` names the module kdlib.data
                mod = name if name in MODULES else name.rsplit(".", 1)[0]
                if mod in MODULES and mod != "kdlib":
                    found.append((mod, id(node) in top))
    return found


def test_every_notebook_after_00_has_its_lesson_module():
    lessons = {p.stem for p in LESSONS}
    for nb in NOTEBOOKS:
        if nb.stem.startswith("00"):
            continue
        assert f"lesson{nb.stem}" in lessons, f"{nb.name} needs kdlib/lessons/lesson{nb.stem}.py"
    notebook_names = {f"lesson{nb.stem}" for nb in NOTEBOOKS}
    assert lessons <= notebook_names, f"lesson modules without a notebook: {lessons - notebook_names}"


@pytest.mark.parametrize("nb", [p for p in NOTEBOOKS if not p.stem.startswith("00")],
                         ids=lambda p: p.stem)
def test_notebook_imports_its_lesson_and_names_it_first(nb):
    cells = json.loads(nb.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert f"from kdlib.lessons import lesson{nb.stem} as lesson" in code
    first_md = next("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert f"kdlib/lessons/lesson{nb.stem}.py" in first_md


def test_core_never_imports_lessons_and_lessons_never_import_each_other():
    for name, path in MODULES.items():
        targets = {m for m, _ in kdlib_imports(path)}
        if name.startswith("kdlib.lessons."):
            others = {t for t in targets if t.startswith("kdlib.lessons") and t != name}
            assert not others, f"{name} imports another lesson: {others}"
        else:
            assert not any(t.startswith("kdlib.lessons") for t in targets), \
                f"core module {name} imports a lesson"


def test_imports_between_kdlib_modules_are_at_the_top():
    inner = [(name, m) for name, path in MODULES.items() for m, at_top in kdlib_imports(path)
             if not at_top]
    assert not inner, f"function-body imports between kdlib modules: {inner}"


def test_no_import_cycle():
    graph = {name: {m for m, _ in kdlib_imports(path)} - {name} for name, path in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(stack + [node, nxt])}")
            if nxt not in state:
                visit(nxt, stack + [node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_every_lesson_module_opens_with_a_docstring_naming_its_notebook():
    for path in LESSONS:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert f"{path.stem[len('lesson'):]}.ipynb" in doc, f"{path.name}: docstring must name its notebook"
