"""Write the student edition of the notebooks: solutions removed, answer cells left as stubs.

    python tools/student_edition.py [--out build/student] [NOTEBOOK ...]

The source notebooks mark their solutions in nbgrader's format, so that a course with nbgrader
can ``generate_assignment`` and ``autograde`` them directly; this tool does the same removal
without nbgrader:

* a code cell's ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region (the reference answer,
  commented in the source so that the stored run keeps its placeholder) becomes
  ``# YOUR CODE HERE``, indented as the region was; the placeholder above it (``answer = None``)
  and the check below it stay, so the check prints "Not yet" until the learner answers;
* a markdown cell's ``BEGIN MARK SCHEME`` ... ``END MARK SCHEME`` region (the collapsed
  ``<details>`` solution, between HTML comments the rendered page does not show) is removed;
* the outputs of every cell that held a solution region, and of every check cell (an
  nbgrader autograder test: ``grade`` true, ``solution`` false), are cleared, since they show the
  source run's verdict; every other cell keeps the stored output the learner reads.

Each exercise is an *autograded answer* cell (``solution: true, grade: false``: the placeholder and
the solution region) followed by one *autograder test* cell per exercise (``grade: true,
solution: false, locked: true, points: 1``) that prints
``lesson.check_exercise(n, answer).require()``. ``Verdict.require`` raises only under nbgrader
(``NBGRADER_EXECUTION`` set), so that ``nbgrader autograde`` scores a wrong answer 0 while a
learner's own run prints "Not yet: <hint>". A course with nbgrader sets
``c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE"}`` (our placeholders sit above the
region, so nbgrader's default ``raise NotImplementedError()`` is not needed) and runs
``generate_assignment`` and ``autograde`` on the source notebooks.

A notebook with a solution left unmarked (a ``<details>`` block outside a mark scheme) is an
error, so that no solution reaches a learner by accident. Nothing here imports nbgrader.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BEGIN_SOLUTION, END_SOLUTION = "BEGIN SOLUTION", "END SOLUTION"  # nbgrader's delimiters (substrings)
BEGIN_MARK_SCHEME, END_MARK_SCHEME = "BEGIN MARK SCHEME", "END MARK SCHEME"
CODE_STUB = "# YOUR CODE HERE"


def _regions(lines: list[str], begin: str, end: str, where: str):
    """Yield ``(start, stop)`` line spans (delimiters included) of each begin/end region."""
    start = None
    for i, line in enumerate(lines):
        if begin in line:
            if start is not None:
                raise ValueError(f"{where}: nested '{begin}'")
            start = i
        elif end in line:
            if start is None:
                raise ValueError(f"{where}: '{end}' without '{begin}'")
            yield start, i + 1
            start = None
    if start is not None:
        raise ValueError(f"{where}: '{begin}' without '{end}'")


def solution_blocks(source: str, where: str = "cell") -> list[str]:
    """The contents of each ``BEGIN SOLUTION`` region of a code cell, delimiters excluded."""
    lines = source.split("\n")
    return ["\n".join(lines[a + 1:b - 1]) for a, b in _regions(lines, BEGIN_SOLUTION, END_SOLUTION, where)]


def mark_schemes(source: str, where: str = "cell") -> list[str]:
    """The contents of each ``BEGIN MARK SCHEME`` region of a markdown cell, delimiters excluded."""
    lines = source.split("\n")
    spans = _regions(lines, BEGIN_MARK_SCHEME, END_MARK_SCHEME, where)
    return ["\n".join(lines[a + 1:b - 1]) for a, b in spans]


def _strip(source: str, begin: str, end: str, stub: str | None, where: str) -> tuple[str, bool]:
    lines = source.split("\n")
    out, last = [], 0
    spans = list(_regions(lines, begin, end, where))
    for a, b in spans:
        out += lines[last:a]
        if stub is not None:
            out.append(re.match(r"\s*", lines[a]).group(0) + stub)
        last = b
    out += lines[last:]
    text = "\n".join(out)
    if stub is None:  # a removed mark scheme leaves no run of blank lines behind
        text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return text, bool(spans)


def is_check(cell: dict) -> bool:
    """Whether ``cell`` is an exercise's check: an nbgrader autograder test cell."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell["cell_type"] == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def student_notebook(nb: dict, name: str = "notebook") -> dict:
    """Return the student edition of one notebook (a new dict; ``nb`` is not changed)."""
    nb = json.loads(json.dumps(nb))
    for i, cell in enumerate(nb["cells"]):
        where = f"{name}, cell {i}"
        source = "".join(cell["source"])
        if cell["cell_type"] == "code":
            source, changed = _strip(source, BEGIN_SOLUTION, END_SOLUTION, CODE_STUB, where)
            if changed or is_check(cell):
                cell["outputs"], cell["execution_count"] = [], None
        elif cell["cell_type"] == "markdown":
            source, changed = _strip(source, BEGIN_MARK_SCHEME, END_MARK_SCHEME, None, where)
            if "<details" in source:
                raise ValueError(f"{where}: a <details> block outside a mark scheme (mark it "
                                 f"<!-- === BEGIN MARK SCHEME === --> ... <!-- === END MARK SCHEME === -->)")
        else:
            changed = False
        if changed:
            cell["source"] = _lines(source)
    return nb


def write_edition(notebooks, out: Path) -> list[Path]:
    """Write the student edition of each notebook into ``out``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in notebooks:
        path = Path(path)
        nb = student_notebook(json.loads(path.read_text()), path.name)
        target = out / path.name
        target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="source notebooks (default: notebooks/NN_*.ipynb)")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "student")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    try:
        written = write_edition(notebooks, args.out)
    except ValueError as err:
        print(f"student_edition: {err}", file=sys.stderr)
        return 1
    print(f"student edition: {len(written)} notebooks in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
