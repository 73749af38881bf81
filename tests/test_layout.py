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


# --------------------------------------------------------------------------- the lesson template
LESSON_NAMES = sorted(p.stem for p in (REPO / "kdlib" / "lessons").glob("lesson[0-9][0-9]_*.py"))


def _public(module):
    import inspect

    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield name, obj


def _has_numpy_section(obj) -> bool:
    import inspect

    doc = inspect.getdoc(obj) or ""
    return any(f"{h}\n---" in doc for h in ("Parameters", "Returns", "Yields", "Attributes"))


@pytest.mark.parametrize("name", LESSON_NAMES)
def test_lesson_module_follows_the_template(name):
    """Settings (a frozen dataclass) from check_params, EXERCISES, check_exercise -> Verdict."""
    import dataclasses
    import importlib
    import inspect
    import typing

    from kdlib._checks import Verdict

    lesson = importlib.import_module(f"kdlib.lessons.{name}")
    assert dataclasses.is_dataclass(lesson.Settings) and lesson.Settings.__dataclass_params__.frozen
    hints = typing.get_type_hints(lesson.check_params)
    assert hints["return"] is lesson.Settings, f"{name}.check_params must return Settings"
    assert set(inspect.signature(lesson.check_params).parameters) == {"params"}
    assert isinstance(lesson.EXERCISES, dict) and lesson.EXERCISES
    assert typing.get_type_hints(lesson.check_exercise)["return"] is Verdict
    first = min(lesson.EXERCISES)
    verdict = lesson.check_exercise(first, None)  # the placeholder: "Not yet", needs no evidence
    assert isinstance(verdict, Verdict) and not verdict and repr(verdict).startswith("Not yet: ")
    with pytest.raises(ValueError, match="is not an exercise"):
        lesson.check_exercise(max(lesson.EXERCISES) + 1, None)


@pytest.mark.parametrize("name", LESSON_NAMES)
def test_lesson_public_functions_have_numpy_docstrings(name):
    import importlib

    lesson = importlib.import_module(f"kdlib.lessons.{name}")
    missing = [attr for attr, obj in _public(lesson) if not _has_numpy_section(obj)]
    assert not missing, f"{name}: docstrings without a Parameters/Returns section: {missing}"


CORE_NAMES = sorted(p.stem for p in KDLIB.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", CORE_NAMES)
def test_core_public_functions_have_numpy_docstrings(name):
    import importlib

    module = importlib.import_module(f"kdlib.{name}")
    missing = [attr for attr, obj in _public(module) if not _has_numpy_section(obj)]
    assert not missing, f"kdlib.{name}: docstrings without a Parameters/Returns section: {missing}"
