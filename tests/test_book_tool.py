"""The offline book's widget conversion (tools/build_book.py) and the JupyterLab overrides that
``make setup`` installs (tools/jupyterlab-overrides.json); the built book is checked in
tests/browser/test_book.py."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
VIEW = "application/vnd.jupyter.widget-view+json"
STATE = "application/vnd.jupyter.widget-state+json"


def _load_tool():
    spec = importlib.util.spec_from_file_location("build_book", REPO / "tools" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _model(name, **state):
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}


PNG = "iVBORw0KGgo="
MODELS = {
    "box": _model("VBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_label", "IPY_MODEL_out"],
                  layout="IPY_MODEL_layout"),
    "slider": _model("FloatSliderModel", description="T", value=1.0, readout_format=".2f",
                     layout="IPY_MODEL_layout", style="IPY_MODEL_style"),
    "label": _model("HTMLModel", value="teacher: <b>88 %</b>", layout="IPY_MODEL_layout"),
    "out": _model("OutputModel", outputs=[{"output_type": "display_data", "metadata": {},
                                           "data": {"image/png": PNG, "text/plain": "<Figure>"}}]),
    "layout": _model("LayoutModel", width="300px"),
    "style": _model("SliderStyleModel", description_width=""),
    "drop": _model("DropdownModel", description="image", index=1, _options_labels=["a", "b & c"]),
    "button": _model("ButtonModel", description="train"),
}


def test_a_widget_becomes_its_stored_controls_text_and_picture():
    tool = _load_tool()
    outs = tool.static_widget_outputs("box", MODELS)
    assert [o.output_type for o in outs] == ["display_data", "display_data"]
    note = outs[0].data["text/html"]
    assert "T = 1.00" in note and "teacher: <b>88 %</b>" in note and "JupyterLab" in note
    assert outs[1].data["image/png"] == PNG
    assert "image = b &amp; c" in tool.static_widget_outputs("drop", MODELS)[0].data["text/html"]
    assert tool.static_widget_outputs("button", MODELS) == []     # nothing stored to show
    assert tool.static_widget_outputs("not-saved", MODELS) == []


def test_static_notebook_replaces_views_and_drops_the_widget_state():
    tool = _load_tool()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("explorer", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="hi\n"),
        nbformat.v4.new_output("display_data", data={VIEW: {"model_id": "box", "version_major": 2,
                                                            "version_minor": 0}, "text/plain": "VBox()"}),
    ])])
    nb.metadata["widgets"] = {STATE: {"state": MODELS, "version_major": 2, "version_minor": 0}}
    static = tool.static_notebook(nb)
    outputs = static.cells[0].outputs
    assert outputs[0].output_type == "stream"
    assert [VIEW in o.get("data", {}) for o in outputs] == [False, False, False]
    assert outputs[-1].data["image/png"] == PNG
    assert "widgets" not in static.metadata and "widgets" in nb.metadata   # the input is untouched
    nbformat.validate(static)


def test_title_is_the_first_heading():
    tool = _load_tool()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("intro\n## The aim\ntext")])
    assert tool.title(nb) == "The aim"
    assert tool.title(nbformat.v4.new_notebook()) == ""


def test_lab_overrides_name_real_settings_with_allowed_values():
    overrides = json.loads((REPO / "tools" / "jupyterlab-overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    schemas = Path(sys.prefix) / "share" / "jupyter" / "lab" / "schemas"
    for plugin, values in overrides.items():
        package, name = plugin.split(":")
        schema = json.loads((schemas / package / f"{name}.json").read_text())
        for key, value in values.items():
            prop = schema["properties"][key]
            allowed = [c["const"] for c in prop.get("oneOf", [])] or None
            assert allowed is None or value in allowed, (plugin, key, value, allowed)
            assert isinstance(value, {"string": str, "boolean": bool}[prop["type"]]), (plugin, key)


def test_make_setup_installs_the_overrides_where_jupyterlab_reads_them():
    from jupyterlab.commands import get_app_dir

    makefile = (REPO / "Makefile").read_text()
    target = re.search(r"^LAB_OVERRIDES := \$\(VENV\)/(\S+)$", makefile, flags=re.MULTILINE)
    assert target, "Makefile: LAB_OVERRIDES"
    # JupyterLab's application settings folder is {app_dir}/settings, app_dir {sys.prefix}/share/jupyter/lab.
    app_settings = Path(get_app_dir()) / "settings" / "overrides.json"
    assert app_settings == Path(sys.prefix) / target.group(1)
    stamp_recipe = makefile[makefile.index("$(STAMP): "):makefile.index("## lab:")]
    assert "tools/jupyterlab-overrides.json" in stamp_recipe.splitlines()[0]   # a prerequisite
    assert "install -D -m 644 tools/jupyterlab-overrides.json $(LAB_OVERRIDES)" in stamp_recipe
