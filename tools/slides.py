"""Choose the RISE slide type of every cell of the notebooks (``jupyterlab-rise``, Alt+R).

    python tools/slides.py [NOTEBOOK ...]            # write the slide metadata (default: all)
    python tools/slides.py --check [NOTEBOOK ...]    # exit 1 if a notebook is not up to date
    python tools/slides.py --against REV [NOTEBOOK ...]
        # exit 1 if a notebook differs from git revision REV in anything but slide metadata

Only ``cell.metadata.slideshow.slide_type`` and the notebook's ``metadata.rise`` (:data:`RISE`:
a slide taller than the screen scrolls) are written: sources, outputs, execution counts and
every other byte stay as stored (the notebooks are read and written as plain JSON, which keeps
their layout; no cell is executed). Running it twice changes nothing. The rules, in order:

* a markdown cell whose first line is a ``#`` or ``##`` heading starts a **slide** (the
  ``## Parameters`` heading is set-up: skipped);
* the cell right after a "predict, then reveal" prompt (``**Predict, then reveal.**``,
  ``**Predict, then run.**``, ``**Predict first:**``) is a **fragment**: the room answers
  before the presenter reveals it;
* set-up cells are **skip**: the first code cell (imports), the ``parameters``-tagged cell and
  the validation cell right after it;
* a long code cell (more than :data:`LONG_CODE_LINES` lines) is **skip** when it prints only
  text, a **fragment** when it draws something (an image, a widget, HTML), so no picture is lost;
* a live widget (an explorer) gets a screen of its own: the markdown cell right before the cell
  that shows it starts a **subslide** (what to look for, then the sliders), or the widget's cell
  itself when no text comes before it;
* a ``###`` heading, or a markdown cell after :data:`SUBSLIDE_AFTER` shown cells of the same
  slide, starts a **subslide** (long sections scroll down, not off the screen);
* everything else continues the slide (``-``).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
LONG_CODE_LINES = 12
SUBSLIDE_AFTER = 5
PROMPT = re.compile(r"\*\*Predict(, then (reveal|run))?[.:]?\*\*|\*\*Predict first:?\*\*", re.I)
RISE = {"scroll": True}  # notebook metadata jupyterlab-rise merges into its settings
WIDGET = "application/vnd.jupyter.widget-view+json"
RICH = ("image/png", "image/svg+xml", "image/jpeg", "text/html", WIDGET)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _heading_level(cell: dict) -> int:
    """1-6 for a markdown cell that starts with a heading, else 0."""
    if cell["cell_type"] != "markdown":
        return 0
    first = _source(cell).lstrip("\n").split("\n", 1)[0]
    match = re.match(r"(#{1,6})\s", first)
    return len(match.group(1)) if match else 0


def _draws(cell: dict, keys=RICH) -> bool:
    return any(key in out.get("data", {}) for out in cell.get("outputs", []) for key in keys)


def _widget(cell: dict | None) -> bool:
    return cell is not None and cell["cell_type"] == "code" and _draws(cell, (WIDGET,))


def slide_types(cells: list[dict]) -> list[str]:
    """The slide type of each cell, by the rules of this module's docstring."""
    types: list[str] = []
    code_seen = False
    after_parameters = False
    after_prompt = False
    shown = 0  # cells shown since the last slide or subslide
    for i, cell in enumerate(cells):
        src, level = _source(cell), _heading_level(cell)
        before, after = (cells[i - 1] if i else None), (cells[i + 1] if i + 1 < len(cells) else None)
        opens_widget = (cell["cell_type"] == "markdown" and _widget(after)) or (
            _widget(cell) and (before is None or before["cell_type"] != "markdown"))
        tags = cell.get("metadata", {}).get("tags", [])
        if level in (1, 2):
            kind = "skip" if re.match(r"#+\s*Parameters\b", src.lstrip()) else "slide"
        elif after_prompt:
            kind = "fragment"
        elif cell["cell_type"] == "code" and (not code_seen or "parameters" in tags
                                              or after_parameters):
            kind = "skip"
        elif cell["cell_type"] == "code" and len(src.strip().splitlines()) > LONG_CODE_LINES:
            kind = "fragment" if _draws(cell) else "skip"
        elif opens_widget or level == 3 or (cell["cell_type"] == "markdown" and shown >= SUBSLIDE_AFTER):
            kind = "subslide"
        else:
            kind = "-"
        if cell["cell_type"] == "code":
            after_parameters = "parameters" in tags
            code_seen = True
        after_prompt = cell["cell_type"] == "markdown" and bool(PROMPT.search(src))
        if kind in ("slide", "subslide"):
            shown = 1
        elif kind != "skip":
            shown += 1
        types.append(kind)
    return types


def apply(nb: dict) -> dict:
    """``nb`` with every cell's ``metadata.slideshow.slide_type`` and ``metadata.rise`` set
    (in place; returned)."""
    nb["metadata"]["rise"] = {**nb["metadata"].get("rise", {}), **RISE}
    for cell, kind in zip(nb["cells"], slide_types(nb["cells"]), strict=True):
        meta = dict(cell.get("metadata", {}))
        meta["slideshow"] = {**meta.get("slideshow", {}), "slide_type": kind}
        cell["metadata"] = dict(sorted(meta.items()))
    return nb


def dumps(nb: dict) -> str:
    """The notebook as stored: nbformat's JSON layout (indent 1, UTF-8), keys in their order."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def without_slides(nb: dict) -> dict:
    """A copy of ``nb`` with the slide metadata removed, for comparing everything else."""
    nb = json.loads(json.dumps(nb))
    nb["metadata"].pop("rise", None)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("slideshow", None)
    return nb


def _notebooks(args: list[str]) -> list[Path]:
    return [Path(a).resolve() for a in args] or sorted(NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--check", action="store_true", help="only report notebooks not up to date")
    parser.add_argument("--against", metavar="REV",
                        help="check that nothing but slide metadata differs from git revision REV")
    args = parser.parse_args(argv)
    bad = []
    for path in _notebooks(args.notebooks):
        raw = path.read_text(encoding="utf-8")
        nb = json.loads(raw)
        if args.against:
            rel = path.relative_to(REPO).as_posix()
            old = subprocess.run(["git", "show", f"{args.against}:{rel}"], cwd=REPO, check=True,
                                 capture_output=True, text=True).stdout
            if without_slides(nb) != without_slides(json.loads(old)):
                bad.append(f"{rel}: differs from {args.against} in more than slide metadata")
            continue
        new = dumps(apply(nb))
        if new != raw:
            if args.check:
                bad.append(f"{path.name}: slide metadata not up to date (run tools/slides.py)")
            else:
                path.write_text(new, encoding="utf-8")
                print(f"wrote {path.name}")
    print("\n".join(bad) or "ok", file=sys.stderr if bad else sys.stdout)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
