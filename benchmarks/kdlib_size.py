"""Count kdlib's lines per module: all of them, and split into code, docstrings and the rest.

    python benchmarks/kdlib_size.py [--markdown]

"code" is a line of a Python statement (not blank, not only a comment, not inside a
docstring); "docstrings" are the lines of module, class and function docstrings (the NumPy
sections DESIGN asks for on every public function live there); "other" is blank lines and
comments. ``tests/test_layout.py`` guards the code-line total with :data:`CODE_LINES_MAX`.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

KDLIB = Path(__file__).resolve().parents[1] / "kdlib"
CODE_LINES_MAX = 10_500
"""The ceiling on kdlib's code lines (the one-engine issue's size target, in code lines)."""


def count(path: Path) -> dict:
    """Lines of one Python file: ``total``, ``code``, ``docstrings`` and ``other``.

    Parameters
    ----------
    path : pathlib.Path

    Returns
    -------
    dict
    """
    src = path.read_text()
    doc = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                doc.update(range(first.lineno, first.end_lineno + 1))
    lines = src.splitlines()
    code = sum(1 for i, ln in enumerate(lines, 1)
               if ln.strip() and not ln.strip().startswith("#") and i not in doc)
    return {"total": len(lines), "code": code, "docstrings": len(doc),
            "other": len(lines) - code - len(doc)}


def table() -> list[tuple[str, dict]]:
    """Every module of kdlib (``kdlib/…``) with its :func:`count`, then ``("total", …)``.

    Returns
    -------
    list of tuple
    """
    rows = [(str(p.relative_to(KDLIB.parent)), count(p)) for p in sorted(KDLIB.rglob("*.py"))]
    total = {k: sum(r[k] for _, r in rows) for k in ("total", "code", "docstrings", "other")}
    return rows + [("total", total)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args(argv)
    keys = ("total", "code", "docstrings", "other")
    if args.markdown:
        print("| module | " + " | ".join(keys) + " |\n| --- |" + " ---: |" * len(keys))
    for name, row in table():
        if args.markdown:
            print(f"| {name} | " + " | ".join(f"{row[k]:,}" for k in keys) + " |")
        else:
            print(f"{name:45s}" + "".join(f"{row[k]:>9,}" for k in keys))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
