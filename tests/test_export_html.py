"""``make html`` (tools/export_html.py): a static page per stored notebook, every plot included."""

from __future__ import annotations

import base64
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load_tool():
    spec = importlib.util.spec_from_file_location("export_html", REPO / "tools" / "export_html.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("html")
    assert _load_tool().main(["--out", str(out)]) == 0
    return out


@pytest.mark.slow  # nbconvert over every stored notebook (~20 s here)
def test_every_notebook_has_a_page_listed_in_the_index(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    assert NOTEBOOKS
    for nb in NOTEBOOKS:
        assert (site / f"{nb.stem}.html").is_file(), nb.name
        assert f'href="{nb.stem}.html"' in index
    assert len(re.findall(r"<li>", index)) == len(NOTEBOOKS)


@pytest.mark.slow
@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_png_made_it_into_the_page(site, nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    pngs = [o["data"]["image/png"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]
    page = (site / f"{nb_path.stem}.html").read_text(encoding="utf-8")
    embedded = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(embedded) == len(pngs), nb_path.name
    for png in pngs:
        data = "".join(png.split())
        assert data in {"".join(e.split()) for e in embedded}
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<pre" in page or not any(c.cell_type == "code" for c in nb.cells)


def test_title_is_the_first_heading():
    tool = _load_tool()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("intro\n## The aim\ntext")])
    assert tool.title(nb) == "The aim"
    assert tool.title(nbformat.v4.new_notebook()) == ""
