"""The package layout that kdlib/__init__.py describes, checked on the source itself.

One lesson module per notebook; core never imports lessons; lessons never import each
other; imports between kdlib modules sit at the top of files and form no cycle.
"""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
KDLIB = REPO / "kdlib"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
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
LESSON_NAMES = sorted(p.stem for p in (REPO / "kdlib" / "lessons").glob("lesson[0-9][0-9]*_*.py"))


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

    from kdlib._checks import Param, Verdict, allowed

    lesson = importlib.import_module(f"kdlib.lessons.{name}")
    assert dataclasses.is_dataclass(lesson.Settings) and lesson.Settings.__dataclass_params__.frozen
    # the parameters are written once, in PARAMS: the fields and their documentation come from it
    assert all(isinstance(p, Param) for p in lesson.PARAMS.values()), f"{name}: PARAMS entries must be Param"
    assert [f.name for f in dataclasses.fields(lesson.Settings)] == list(lesson.PARAMS)
    doc = inspect.getdoc(lesson.Settings)
    for key, p in lesson.PARAMS.items():
        assert f"\n{key} : " in doc and p.doc in doc and f"Allowed: {allowed(p)}." * bool(allowed(p)) in doc
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


# --------------------------------------------------------------------------- one engine, one table, one plot
def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def test_kdlib_code_lines_stay_under_the_ceiling():
    """kdlib's statements (not docstrings, comments or blanks: benchmarks/kdlib_size.py) <= 10,500."""
    spec = importlib.util.spec_from_file_location("kdlib_size", KDLIB.parent / "benchmarks" / "kdlib_size.py")
    size = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(size)
    rows = dict(size.table())
    total = rows.pop("total")
    assert total["total"] == sum(r["total"] for r in rows.values()) == \
        total["code"] + total["docstrings"] + total["other"]
    assert rows["kdlib/losses.py"]["docstrings"] > 0 and rows["kdlib/losses.py"]["code"] > 0
    assert total["code"] <= size.CODE_LINES_MAX, (
        f"kdlib has {total['code']:,} code lines; the ceiling is {size.CODE_LINES_MAX:,}")


def test_no_function_takes_more_than_ten_parameters():
    """More than ten go through a settings object (TrainSettings, a lesson's Settings) or **recipe."""
    wide = []
    for path in KDLIB.rglob("*.py"):
        for fn in _functions(path):
            a = fn.args
            names = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs if p.arg not in ("self", "cls")]
            if len(names) > 10:
                wide.append(f"{path.relative_to(REPO)}:{fn.lineno} {fn.name} ({len(names)})")
    assert not wide, f"functions with more than 10 parameters: {wide}"


#: Lesson code (top-level functions and classes) that runs a training loop or seeds the global
#: RNG itself, and why it may. Everything else trains through kdlib.experiments (issue 16).
OWN_LOOPS = {
    ("lesson04a_article_formulas", "compare_lams_by_optimizer"): "Adam's ε is the lesson (not in fit)",
    ("lesson04a_article_formulas", "_train_article"): "the plain SGD/Adam loop of compare_lams_by_optimizer",
    ("lesson04b_correct_loss", "_SpyTeacher"): "check_training_step's teacher, seeded for a reference step",
    ("lesson04b_correct_loss", "_reference_step"): "the one correct step a learner's step is graded against",
    ("lesson04b_correct_loss", "check_training_step"): "grades the learner's one step",
    ("lesson07_efficiency", "teacher_step_time"): "times one training step of the teacher",
    ("lesson07_efficiency", "teacher_cost"): "times distill with cached and with per-batch teacher logits",
}
_TRAINING = {"fit", "distill", "train.fit", "train.distill", "torch.manual_seed"}


def _top_level(path: Path):
    """(name, node) of every top-level function and class of a module."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name, node


def _calls_in(node):
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name):
                yield f.id, n.lineno
            elif isinstance(f, ast.Attribute):
                base = f"{f.value.id}." if isinstance(f.value, ast.Name) else "."
                yield f"{base}{f.attr}", n.lineno


def test_lessons_train_students_only_through_the_engine():
    found = []
    for path in LESSONS:
        for name, node in _top_level(path):
            if (path.stem, name) in OWN_LOOPS:
                continue
            found += [f"{path.stem}.{name}:{line} calls {call}" for call, line in _calls_in(node)
                      if call in _TRAINING or call.endswith(".backward")]
    assert not found, f"lesson code training by itself (use kdlib.experiments): {found}"
    for stem, name in OWN_LOOPS:
        assert name in dict(_top_level(KDLIB / "lessons" / f"{stem}.py")), \
            f"OWN_LOOPS names {stem}.{name}, which no longer exists: remove it"


#: Lessons not yet moved to results.compare / plots.dot_plot (issue 16, item 2). The list only
#: shrinks: a lesson that no longer needs its entry fails the test until it is removed.
OWN_TABLES_AND_DOTS: set[str] = set()


def _own_tables_and_dots(path: Path) -> list[str]:
    out = [f"{name}:{line}" for name, line in _calls_in(ast.parse(path.read_text()))
           if name.endswith(".errorbar")]
    for fn in _functions(path):
        returns_str = isinstance(fn.returns, ast.Name) and fn.returns.id == "str"
        if returns_str and (fn.name.startswith("format_") or fn.name.endswith("_table")):
            out.append(f"{fn.name}:{fn.lineno}")
    return out


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_lessons_tabulate_and_plot_comparisons_through_core(path):
    own = _own_tables_and_dots(path)
    if path.stem in OWN_TABLES_AND_DOTS:
        assert own, f"{path.stem} has no own tables or errorbars left: remove it from OWN_TABLES_AND_DOTS"
    else:
        assert not own, (f"{path.stem}: its own text tables / errorbar plots {own}; use results.compare, "
                         "results.styled and plots.dot_plot")


# --------------------------------------------------------------------------- the test set never chooses
#: Lesson functions that read the test split while picking something, each with its reason.
TEST_SET_PICKS = {
    ("lesson06_dark_knowledge", "oracle_bias"):
        "Hinton et al.'s optimistic bias, printed beside the validation-chosen one as an upper bound; "
        "no reported result uses it",
    ("lesson05_lambda_tuning", "tune_on_validation"):
        "chooses with experiments.choose on validation, then scores only the chosen students on test",
}
_CHOOSERS = {"choose", "select_best", "summarize", "choose_bias"}
_PICKING = ("choose", "select", "tune", "pick", "best", "oracle")


def _reads_test(node) -> list[str]:
    """Test-split reads inside ``node``: ``*.test`` attributes, ``test_*`` names and ``"test..."``
    strings."""
    found = []
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and n.attr == "test":
            found.append(f".test:{n.lineno}")
        elif isinstance(n, (ast.Name, ast.arg)) and (getattr(n, "id", None) or n.arg).startswith("test"):
            found.append(f"{getattr(n, 'id', None) or n.arg}:{n.lineno}")
        elif isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value.startswith("test") \
                and n.value not in ("test", "tests"):
            found.append(f"{n.value!r}:{n.lineno}")
    return found


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_no_lesson_chooses_on_the_test_set(path):
    """Selection (λ, T, ε, lr, bias, epochs) reads training and validation data only (DESIGN's
    protocol): no chooser is called with a test metric, and no function whose name says it picks
    something reads the test split, unless TEST_SET_PICKS names it with its reason."""
    tree = ast.parse(path.read_text())
    bad = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        for kw in call.keywords if name in _CHOOSERS else ():
            value = kw.value.value if isinstance(kw.value, ast.Constant) else None
            if kw.arg == "metric" and str(value).startswith("test"):
                bad.append(f"{name}(metric={value!r}):{call.lineno}")
    for fn in _functions(path):
        if any(w in fn.name for w in _PICKING) and (path.stem, fn.name) not in TEST_SET_PICKS:
            bad += [f"{fn.name} reads {r}" for r in _reads_test(fn)]
    assert not bad, f"{path.stem}: choices that read the test split: {bad}"


_IMPERATIVE = {"check_int", "check_float", "check_choice"}


def _is_fixed(node) -> bool:
    """A literal, a negated literal or a module constant (an UPPER_CASE name)."""
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant) or (isinstance(node, ast.Name) and node.id.isupper())


def _own_body_calls(fn):
    """The calls in ``fn``'s body, not in the functions and classes defined inside it."""
    todo = list(fn.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def _fixed_body_checks(fn):
    """The ``check_int``/``check_float``/``check_choice`` calls in ``fn``'s body that check one of
    its own parameters against bounds fixed in the source."""
    a = fn.args
    params = {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
    for call in _own_body_calls(fn):
        f = call.func
        name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
        if name not in _IMPERATIVE or len(call.args) < 2:
            continue
        checked, bounds = call.args[1], call.args[2:] + [k.value for k in call.keywords]
        if isinstance(checked, ast.Name) and checked.id in params and all(map(_is_fixed, bounds)):
            yield call


@pytest.mark.parametrize("path", sorted(p for p in KDLIB.rglob("*.py") if p.name != "_checks.py"),
                         ids=lambda p: str(p.relative_to(KDLIB)))
def test_fixed_bounds_on_a_parameter_are_declared_not_checked_in_the_body(path):
    """One validation mechanism (issue 16): a parameter whose allowed range is fixed is checked by
    ``@validate_params`` above its function; ``check_int``/``check_float``/``check_choice`` in a
    body are for ranges that depend on the data or on another argument."""
    bad = [f"{fn.name}:{call.lineno} {ast.unparse(call)}" for fn in _functions(path)
           for call in _fixed_body_checks(fn)]
    assert not bad, f"{path.relative_to(REPO)}: fixed checks to declare with @validate_params: {bad}"


def test_the_fixed_bounds_rule_finds_a_body_check():
    """The rule above flags a fixed check of a parameter, not a data-dependent one, not another name's."""
    fn = ast.parse("def f(n, k=3):\n    n = check_int('n', n, low=1, high=-LIMIT)\n"
                   "    check_int('k', k, low=1, high=len(n))\n    m = check_float('m', other, low=0)\n"
                   "    def g(q):\n        return q\n").body[0]
    assert [c.lineno for c in _fixed_body_checks(fn)] == [2]


def test_fits_training_loop_reads_on_one_screen():
    """Issue 16: ``train.fit``'s loop (the ``for`` over epochs, its batches inside) is at most 40 lines."""
    fn = next(f for f in _functions(KDLIB / "train.py") if f.name == "fit")
    loops = [n for n in ast.walk(fn) if isinstance(n, ast.For)]
    outer = [n for n in loops if not any(n is not m and n in list(ast.walk(m)) for m in loops)]
    assert len(outer) == 1, "fit should have one loop over epochs"
    span = outer[0].end_lineno - outer[0].lineno + 1
    assert any(isinstance(n, ast.For) for n in ast.walk(outer[0]) if n is not outer[0]), "no batch loop"
    assert span <= 40, f"fit's loop has {span} lines"
