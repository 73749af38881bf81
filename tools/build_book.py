"""The offline book: every stored notebook as a static site, ``make book`` → ``build/book/``.

Sphinx with MyST-NB reads the stored notebooks without executing them (``nb_execution_mode =
"off"``) and sphinx-book-theme (Jupyter Book 1.x's theme) gives every page the sidebar with all
notebooks, previous/next links and Sphinx's full-text search, which runs in the browser from
``searchindex.js``. Formulas are typeset by MathJax 2.7 copied from the ``jupyter-server-mathjax``
package (installed from PyPI by ``make setup``) into ``_static/mathjax/``: nothing is loaded from
the network, so the book reads on a train. Configuration: ``tools/book/conf.py``.

A static page cannot run a kernel, so each widget (slider, explorer, progress bar) is replaced,
in a temporary copy of its notebook, by what its stored state holds: the last picture and text
of its ``Output`` areas, the text of its labels, and one line naming the controls with their
stored values ("Interactive in JupyterLab; the stored view shows T = 1.00").

    python tools/build_book.py [--out build/book] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "tools" / "book"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_MODEL_REF = re.compile(r"^IPY_MODEL_(\S+)$")


def _children(state: dict) -> list[str]:
    """Model ids a widget's state refers to (its children), in order."""
    refs = []
    for value in state.values():
        for item in value if isinstance(value, list) else [value]:
            match = _MODEL_REF.match(item) if isinstance(item, str) else None
            if match:
                refs.append(match.group(1))
    return refs


def _control_value(state: dict) -> str | None:
    """A control's stored value as its readout shows it, or ``None`` (buttons, boxes)."""
    labels = state.get("_options_labels")
    if labels is not None and isinstance(state.get("index"), int):
        return str(labels[state["index"]])
    value = state.get("value")
    if value is None or isinstance(value, (list, dict)):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        fmt = state.get("readout_format", "g")
        try:
            return format(value, fmt)
        except ValueError:
            return f"{value:g}"
    return str(value)


def static_widget_outputs(model_id: str, models: dict) -> list:
    """Static outputs standing for widget ``model_id``, from the notebook's stored widget state.

    Parameters
    ----------
    model_id : str
        The ``model_id`` of a widget-view output.
    models : dict
        The notebook's ``metadata.widgets[...]["state"]`` (model id → model).

    Returns
    -------
    list of NotebookNode
        A ``display_data`` with the labels' text and the controls' stored values (if any), then
        the stored outputs of every ``Output`` widget inside, in the widget tree's order. Empty
        when the state holds nothing to show (e.g. a widget not saved with the notebook).
    """
    texts, controls, outputs, seen = [], [], [], set()

    def walk(mid):
        if mid in seen or mid not in models:
            return
        seen.add(mid)
        model = models[mid]
        name, state = model.get("model_name", ""), model.get("state", {})
        if name == "OutputModel":
            outputs.extend(nbformat.from_dict(o) for o in state.get("outputs", []))
        elif name in ("HTMLModel", "HTMLMathModel", "LabelModel") and state.get("value"):
            value = state["value"]
            texts.append(value if name != "LabelModel" else html.escape(value))
        elif not name.endswith(("BoxModel", "LayoutModel", "StyleModel", "ProgressModel")):
            value = _control_value(state)
            if state.get("description") and value is not None:
                controls.append(f"{html.escape(state['description'])} = {html.escape(value)}")
        for child in _children(state):
            walk(child)

    walk(model_id)
    parts = []
    if controls:
        parts.append('<p class="kdlab-static-widget"><em>Interactive in JupyterLab; the stored view '
                     f"shows {', '.join(controls)}.</em></p>")
    if texts:
        parts.append('<div class="kdlab-widget-text">' + " ".join(texts) + "</div>")
    static = []
    if parts:
        static.append(nbformat.v4.new_output("display_data", data={"text/html": "\n".join(parts)}))
    return static + outputs


def static_notebook(nb):
    """A copy of ``nb`` whose widget views are replaced by :func:`static_widget_outputs`."""
    nb = nbformat.from_dict(nb)
    widgets = nb.metadata.pop("widgets", {})
    models = widgets.get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        new = []
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            new.extend(static_widget_outputs(view["model_id"], models) if view else [out])
        cell.outputs = new
    return nb


def title(nb) -> str:
    """The notebook's first markdown heading (without ``#``), or ``""``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#+\s+(.+)$", cell.source, flags=re.MULTILINE)
            if match:
                return match.group(1).strip()
    return ""


INDEX = """# kdlab: knowledge distillation, the book

The executed notebooks as a book to read: every formula, table and plot as the stored run
produced them, with no kernel and no network needed (the maths is typeset by a MathJax copy
inside this folder). Sliders and explorers show their stored picture; to move them, and to
rerun anything, open the notebooks in JupyterLab (`make lab`). Search (the magnifier, or
`Ctrl`+`K`) finds words in every notebook.

```{{toctree}}
:maxdepth: 1
:caption: Notebooks

{entries}
```
"""


def build(notebooks, out, *, quiet=True) -> Path:
    """Write the book of ``notebooks`` into ``out``; return its ``index.html``.

    Parameters
    ----------
    notebooks : sequence of str or Path
        Stored (executed) notebooks, in reading order.
    out : str or Path
        Folder for the site (replaced files are overwritten; created if missing).
    quiet : bool
        Pass ``-q`` to Sphinx (warnings are still printed).

    Returns
    -------
    Path
        The site's ``index.html``.
    """
    from sphinx.cmd.build import build_main

    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="kdlab-book-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        names = []
        for path in map(Path, notebooks):
            nb = nbformat.read(path, as_version=4)
            nbformat.write(static_notebook(nb), src / path.name)
            names.append(path.stem)
        (src / "index.md").write_text(INDEX.format(entries="\n".join(names)), encoding="utf-8")
        args = ["-b", "html", "-c", str(CONF_DIR), "-d", str(Path(tmp) / "doctrees"),
                *(["-q"] if quiet else []), str(src), str(out)]
        if build_main(args) != 0:
            raise RuntimeError(f"sphinx-build failed: {' '.join(args)}")
    return out / "index.html"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tools/build_book.py", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="default: notebooks/[0-9][0-9]*_*.ipynb")
    parser.add_argument("--out", default=str(REPO / "build" / "book"), help="default: build/book")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    start = time.perf_counter()
    index = build(notebooks, args.out)
    print(f"wrote the book of {len(notebooks)} notebooks in {time.perf_counter() - start:.0f} s: "
          f"open {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
