"""A reader's path through a notebook, in JupyterLab in headless Chromium.

Open the notebook, run all cells, move a slider with the keyboard, and check that the
slider's displayed value and the plot drawn below it both changed. A case may give the
notebook parameters (e.g. notebook 05's ``quick=True``: its full run is covered by nbval);
they are injected into the served copy, as papermill would, before it is opened.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]

EXPECT_TIMEOUT_MS = 60_000     # a kernel start takes 5-8 s on 2 shared cores
RUN_ALL_TIMEOUT_MS = 300_000   # the slowest notebook's run-all, with margin
KEY_PRESSES = 3


def _case(notebook: str, slider_label: str, parameters: dict | None = None):
    """A ``(notebook, slider_label, parameters)`` case: the notebook, the description of its
    slider and the parameters to inject (``None``: the stored defaults)."""
    return pytest.param(notebook, slider_label, parameters,
                        id=f"{Path(notebook).stem}-{slider_label}")


CASES = [
    _case("notebooks/02_soft_targets.ipynb", "T"),
    _case("notebooks/05_lambda_tuning.ipynb", "λ", {"quick": True}),
]


def _inject_parameters(path: Path, parameters: dict) -> None:
    """Write ``parameters`` into the notebook at ``path`` as papermill's injected cell."""
    nb = parameterize_notebook(load_notebook_node(str(path)), parameters)
    nbformat.write(nb, path)

# JavaScript run in the page, with window.jupyterapp (LabApp.expose_app_in_browser=True).
_FIND_PANEL = """
(path) => {
  const app = window.jupyterapp;
  if (!app) return null;
  return Array.from(app.shell.widgets('main')).find(
    w => w.context && w.context.path === path && w.content && w.sessionContext) || null;
}
"""
_KERNEL_IDLE = "(path) => { const p = (" + _FIND_PANEL + ")(path);" + """
  return !!(p && p.context.isReady && p.sessionContext.isReady && p.sessionContext.session
            && p.sessionContext.session.kernel
            && p.sessionContext.session.kernel.status === 'idle');
}
"""
_START_RUN_ALL = "async (path) => { const p = (" + _FIND_PANEL + ")(path);" + """
  const app = window.jupyterapp;
  app.shell.activateById(p.id);
  await app.commands.execute('notebook:clear-all-cell-outputs');
  window.__kdlabRunAll = null;
  app.commands.execute('notebook:run-all-cells').then(
    ok => { window.__kdlabRunAll = {done: true, ok: ok !== false}; },
    err => { window.__kdlabRunAll = {done: true, ok: false, error: String(err)}; });
}
"""
_ERRORS = "(path) => { const p = (" + _FIND_PANEL + ")(path);" + """
  const errors = [];
  p.content.widgets.forEach((cell, i) => {
    if (cell.model.type !== 'code') return;
    for (const out of cell.model.outputs.toJSON()) {
      if (out.output_type === 'error') errors.push(`cell ${i}: ${out.ename}: ${out.evalue}`);
    }
  });
  return errors;
}
"""
_IMAGE_SOURCES = """
(handle) => {
  const cell = handle.closest('.jp-Cell');
  return cell ? Array.from(cell.querySelectorAll('.jp-OutputArea img')).map(i => i.src) : [];
}
"""
_IMAGES_CHANGED = """
([handle, before]) => {
  const cell = handle.closest('.jp-Cell');
  if (!cell) return false;
  const now = Array.from(cell.querySelectorAll('.jp-OutputArea img')).map(i => i.src);
  return now.length > 0 && now.some(src => src.startsWith('data:image') && !before.includes(src));
}
"""


def _as_number(text: str | None) -> float | None:
    try:
        return float(str(text).strip())
    except ValueError:
        return None


def _wait_for(page, script: str, arg, timeout_ms: int, message: str) -> None:
    """Wait until ``script(arg)`` is truthy in the page; fail with ``message`` otherwise."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        page.wait_for_function(script, arg=arg, timeout=timeout_ms)
    except PlaywrightTimeoutError as exc:
        raise AssertionError(f"{message} (waited {timeout_ms / 1000:g} s)") from exc


@pytest.mark.parametrize(("notebook", "slider_label", "parameters"), CASES)
def test_slider_changes_plot(page, lab, notebook, slider_label, parameters):
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    path = lab.serve(notebook)
    if parameters:
        _inject_parameters(lab.root / path, parameters)
    page.goto(f"{lab.url}/lab/tree/{path}?token={lab.token}")
    _wait_for(page, _KERNEL_IDLE, path, EXPECT_TIMEOUT_MS,
              f"{notebook} did not open with an idle kernel")

    # Run All Cells by command id (the menu's label also matches "Restart Kernel and Run All").
    page.evaluate(_START_RUN_ALL, path)
    _wait_for(page, "() => window.__kdlabRunAll && window.__kdlabRunAll.done", None,
              RUN_ALL_TIMEOUT_MS, f"Run All Cells did not finish in {notebook}")
    errors = page.evaluate(_ERRORS, path)
    assert errors == [], f"{notebook}: cells raised errors on Run All:\n" + "\n".join(errors)
    run_all = page.evaluate("() => window.__kdlabRunAll")
    assert run_all["ok"], f"{notebook}: Run All Cells failed: {run_all}"

    # The slider with this exact description, its handle, readout and the plot below it.
    label = page.locator(".widget-label").filter(
        has_text=re.compile(rf"^\s*{re.escape(slider_label)}\s*$"))
    slider = page.locator(".widget-slider").filter(has=label).first
    expect(slider).to_be_visible()
    handle = slider.locator(".noUi-handle").first
    readout = slider.locator(".widget-readout").first
    handle.scroll_into_view_if_needed()
    expect(readout).not_to_have_text(re.compile(r"^\s*$"))
    _wait_for(page, _IMAGES_CHANGED, [handle.element_handle(), []], EXPECT_TIMEOUT_MS,
              f"{notebook}: no plot image in the cell of slider {slider_label!r}")
    value_before = readout.inner_text().strip()
    images_before = handle.evaluate(_IMAGE_SOURCES)

    # Move the slider with the keyboard, as a reader would (down if it starts at its maximum).
    at_max = _as_number(handle.get_attribute("aria-valuenow")) == _as_number(
        handle.get_attribute("aria-valuemax"))
    key, direction = ("ArrowLeft", -1) if at_max else ("ArrowRight", 1)
    handle.focus()
    expect(handle).to_be_focused()
    for _ in range(KEY_PRESSES):
        page.keyboard.press(key)

    # The displayed value moved that way, and the kernel redrew the plot.
    expect(readout).not_to_have_text(value_before)
    value_after = readout.inner_text().strip()
    before_num, after_num = _as_number(value_before), _as_number(value_after)
    if before_num is not None and after_num is not None:
        assert (after_num - before_num) * direction > 0, (
            f"{key} x{KEY_PRESSES} moved {slider_label} from {value_before} to {value_after}")
    _wait_for(page, _IMAGES_CHANGED, [handle.element_handle(), images_before], EXPECT_TIMEOUT_MS,
              f"{notebook}: the plot did not change after moving {slider_label} "
              f"from {value_before} to {value_after}")
    errors = page.evaluate(_ERRORS, path)
    assert errors == [], f"{notebook}: moving {slider_label} raised:\n" + "\n".join(errors)
