"""The live slides' metadata (tools/slides.py): every notebook up to date with the tool, the
rules on small cell lists, and the tool touching nothing but ``metadata.slideshow``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb"))

_spec = importlib.util.spec_from_file_location("slides", REPO / "tools" / "slides.py")
slides = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(slides)


def md(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code(text: str, *, tags=(), outputs=()) -> dict:
    return {"cell_type": "code", "metadata": {"tags": list(tags)} if tags else {},
            "source": text, "outputs": list(outputs), "execution_count": 1}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_up_to_date_with_tool(path):
    raw = path.read_text(encoding="utf-8")
    assert slides.dumps(slides.apply(json.loads(raw))) == raw, (
        f"{path.name}: slide metadata out of date: run `python tools/slides.py`")
    types = [c["metadata"]["slideshow"]["slide_type"] for c in json.loads(raw)["cells"]]
    assert types[0] == "slide"
    assert set(types) <= {"slide", "subslide", "fragment", "skip", "-"}
    assert json.loads(raw)["metadata"]["rise"]["scroll"] is True  # a slide taller than the screen scrolls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tool_changes_only_slide_metadata(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    bare = slides.without_slides(nb)
    again = slides.apply(json.loads(json.dumps(bare)))
    assert slides.without_slides(again) == bare
    assert [c.get("outputs") for c in again["cells"]] == [c.get("outputs") for c in nb["cells"]]
    assert [c.get("execution_count") for c in again["cells"]] == [
        c.get("execution_count") for c in nb["cells"]]


def test_rules():
    cells = [
        md("# 99 · Title\nAim."),
        code("import torch"),
        md("## Parameters\npapermill lists these."),
        code("n: int = 3  # images", tags=["parameters"]),
        code("params = lesson.check_params(n=n)"),
        md("## Theory\n**Predict, then reveal.** What comes out?"),
        code("print(1)"),
        code("\n".join(f"x{i} = {i}" for i in range(20))),
        code("\n".join(f"x{i} = {i}" for i in range(20)),
             outputs=[{"output_type": "display_data", "data": {"image/png": "..."}}]),
        md("### A detail"),
        md("text"),
    ]
    assert slides.slide_types(cells) == [
        "slide", "skip", "skip", "skip", "skip", "slide", "fragment", "skip", "fragment",
        "subslide", "-"]


WIDGET_OUT = [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
               "data": {"text/plain": "VBox()", "application/vnd.jupyter.widget-view+json": {}}}]


def test_an_explorer_gets_a_screen_of_its_own():
    cells = [
        md("## Section"), code("import torch"), code("x = 1"), md("prose"),
        md("Move the slider: look for ..."), code("explorer.widget", outputs=WIDGET_OUT),
        md("What we saw"),
        code("y = 2"), code("other.widget", outputs=WIDGET_OUT),  # no text before it
        md("## Next"), code("third.widget", outputs=WIDGET_OUT),  # right after a heading: its slide
    ]
    assert slides.slide_types(cells) == [
        "slide", "skip", "-", "-", "subslide", "-", "-", "-", "subslide", "slide", "-"]


def test_long_section_gets_subslides():
    cells = [code("import torch"), md("## Section")] + [code("x = 1"), md("prose")] * 6
    types = slides.slide_types(cells)
    assert types[:2] == ["skip", "slide"] and "subslide" in types
    assert all(t in ("-", "subslide") for t in types[2:])


def test_explorer_of_02_is_on_its_own_slide():
    nb = json.loads((REPO / "notebooks" / "02_soft_targets.ipynb").read_text(encoding="utf-8"))
    cells = nb["cells"]
    i = next(i for i, c in enumerate(cells) if "".join(c["source"]).startswith("## Temperature explorer"))
    assert cells[i]["metadata"]["slideshow"]["slide_type"] == "slide"
    assert cells[i + 1]["metadata"]["slideshow"]["slide_type"] == "-"
    assert "explorer" in "".join(cells[i + 1]["source"])
