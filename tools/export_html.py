"""Export every stored notebook to static HTML, with an index page: ``make html`` → ``build/html/``.

For reading the executed lessons without a kernel (on a bus, on a phone): each notebook
``notebooks/NN_topic.ipynb`` becomes ``NN_topic.html`` (nbconvert's "lab" template, plots
embedded as PNG data URIs, so a page is one self-contained file) and ``index.html`` lists
them with their titles. Sliders are not interactive in a static page; their last picture is.

    python tools/export_html.py [--out build/html] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter

REPO = Path(__file__).resolve().parents[1]


def title(nb) -> str:
    """The notebook's first markdown heading (without ``#``), or ``""``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#+\s+(.+)$", cell.source, flags=re.MULTILINE)
            if match:
                return match.group(1).strip()
    return ""


def export(notebooks, out) -> list[Path]:
    """Write one HTML page per notebook and ``index.html`` into ``out``; return the pages.

    Parameters
    ----------
    notebooks : sequence of str or Path
        Stored (executed) notebooks.
    out : str or Path
        Folder for the pages (created).

    Returns
    -------
    list of Path
        The notebook pages, in the order given, then ``index.html``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    pages, items = [], []
    for path in map(Path, notebooks):
        nb = nbformat.read(path, as_version=4)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        page = out / f"{path.stem}.html"
        page.write_text(body, encoding="utf-8")
        pages.append(page)
        items.append(f'<li><a href="{html.escape(page.name)}">{html.escape(path.stem)}</a> — '
                     f"{html.escape(title(nb))}</li>")
    index = out / "index.html"
    index.write_text("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                     "<title>kdlab: the notebooks</title></head>\n<body>\n<h1>kdlab: knowledge "
                     "distillation, the executed notebooks</h1>\n<p>Static pages: read the lessons with "
                     "their stored outputs, no kernel needed. To run and move the sliders, open the "
                     "notebooks in JupyterLab (<code>make lab</code>).</p>\n<ol>\n" + "\n".join(items)
                     + "\n</ol>\n</body></html>\n", encoding="utf-8")
    return [*pages, index]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tools/export_html.py", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="default: notebooks/[0-9][0-9]_*.ipynb")
    parser.add_argument("--out", default=str(REPO / "build" / "html"), help="default: build/html")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    pages = export(notebooks, args.out)
    print(f"wrote {len(pages) - 1} pages and {pages[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
