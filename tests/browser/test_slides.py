"""The live slideshow of notebook 02 (jupyterlab-rise), in JupyterLab in headless Chromium.

A teacher's path: open the notebook, run its cells (the kernel the slideshow talks to), start
the slideshow (``RISE:preview``, what Alt+R and the toolbar's RISE button run: the saved
notebook as Reveal.js slides in a panel, on the same kernel), put it full screen (the panel's
toolbar button), advance slide by slide to the temperature explorer, drag its slider and check
that the explorer's picture changes, i.e. that the slider in the slideshow is live.

jupyterlab-rise 0.43.1 loads the widget manager of ``jupyterlab_widgets`` up to 3.0.10 only
(later ones need ``@jupyterlab/console``, which its slideshow app does not share; upstream
jupyterlab-contrib/rise#119): requirements.txt pins ipywidgets 8.1.2 with it for that reason.
"""

from __future__ import annotations

import re
import time

import pytest
from test_lab_sliders import _ERRORS, _KERNEL_IDLE, _START_RUN_ALL, _wait_for

pytestmark = pytest.mark.browser

NOTEBOOK = "notebooks/02_soft_targets.ipynb"
SLIDER_LABEL = "T"
EXPECT_TIMEOUT_MS = 60_000     # a kernel start takes 5-8 s on 2 shared cores
RUN_ALL_TIMEOUT_MS = 300_000
MAX_SLIDES = 12                # the explorer is the 4th slide of 02
NO_WIDGET_MANAGER = (
    "the slideshow shows the explorer as text (no widget manager in RISE's app): is "
    "jupyterlab_widgets newer than 3.0.10? (jupyterlab-contrib/rise#119; requirements.txt)")

_SAVE_AND_PRESENT = """
async (path) => {
  const app = window.jupyterapp;
  const p = Array.from(app.shell.widgets('main')).find(
    w => w.context && w.context.path === path && w.content && w.sessionContext);
  app.shell.activateById(p.id);
  p.content.activeCellIndex = 0;  // the slideshow opens on the active cell's slide
  await p.context.save();
  await app.commands.execute('RISE:preview');
}
"""
_IMAGES = """
(cell) => Array.from(cell.querySelectorAll('.jp-OutputArea img')).map(i => i.src)
"""


def _settled_box(page, locator, timeout_s=EXPECT_TIMEOUT_MS / 1000):
    """``locator``'s bounding box once it is the same twice 300 ms apart (Reveal.js slides a new
    slide in and scales it to the screen: a box measured during that is not where it ends)."""
    last, deadline = None, time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        box = locator.bounding_box()
        if box is not None and box == last:
            return box
        last = box
        page.wait_for_timeout(300)
    return last


@pytest.fixture(scope="module")
def slides_lab(lab_factory, tmp_path_factory):
    """A JupyterLab of this test's own: the shared one also serves notebook 02 to the slider tests,
    and a slideshow left open on the same file and kernel made their plot wait forever."""
    import importlib.util
    import sys
    from pathlib import Path

    # by path: a bare `import conftest` may find the repository's conftest instead of this folder's
    here_path = Path(__file__).with_name("conftest.py")
    spec = importlib.util.spec_from_file_location("_browser_conftest", here_path)
    here = sys.modules.setdefault("_browser_conftest", importlib.util.module_from_spec(spec))
    spec.loader.exec_module(here)
    with lab_factory(tmp_path_factory.mktemp("slides-lab"), user_settings=here.USER_SETTINGS) as server:
        yield server


def test_slideshow_slider_is_live(page, slides_lab):
    lab = slides_lab
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    path = lab.serve(NOTEBOOK)
    page.goto(f"{lab.url}/lab/tree/{path}?token={lab.token}")
    _wait_for(page, _KERNEL_IDLE, path, EXPECT_TIMEOUT_MS, f"{NOTEBOOK} did not open with an idle kernel")
    page.evaluate(_START_RUN_ALL, path)
    _wait_for(page, "() => window.__kdlabRunAll && window.__kdlabRunAll.done", None,
              RUN_ALL_TIMEOUT_MS, f"Run All Cells did not finish in {NOTEBOOK}")
    assert page.evaluate(_ERRORS, path) == []

    # The slideshow: a panel with the RISE app in an iframe, on the same kernel.
    page.evaluate(_SAVE_AND_PRESENT, path)
    frame = page.frame_locator("iframe[src*='rise/']").first
    expect(frame.locator(".reveal .slides section.present").first).to_be_visible()
    # Full screen, as a teacher presents (the panel's toolbar button: a click is the user gesture
    # a browser wants before it goes full screen), so the explorer has the projector's width.
    page.locator("[data-jp-item-name='fullscreen'] jp-button").first.click()
    _wait_for(page, "() => !!document.fullscreenElement", None, EXPECT_TIMEOUT_MS,
              "the slideshow did not go full screen")

    # Advance slide by slide (the slideshow's "next" arrow) from the title to the explorer's slide.
    present = frame.locator(".reveal .slides > section.present").first
    next_slide = frame.locator(".reveal .controls .navigate-right").first
    titles = []
    for _ in range(MAX_SLIDES):
        title = present.locator("h1, h2").first.inner_text().strip()
        titles.append(title)
        if title.startswith("Temperature explorer"):
            break
        next_slide.click()
        expect(present.locator("h1, h2").first).not_to_have_text(title)
    assert titles[-1].startswith("Temperature explorer"), f"slides passed: {titles}"
    assert len(titles) > 1, "the slideshow did not start on the title slide"

    # The explorer on its slide: a live slider (ipywidgets), not the widget's text form
    # ("VBox(children=(..."), which is what a slideshow without a widget manager shows.
    label = frame.locator(".widget-label").filter(
        has_text=re.compile(rf"^\s*{re.escape(SLIDER_LABEL)}\s*$"))
    slider = present.locator(".widget-slider").filter(has=label).first
    try:
        expect(slider).to_be_visible(timeout=15_000)
    except AssertionError:
        assert "VBox(children=" not in present.inner_text(), NO_WIDGET_MANAGER
        raise

    # The explorer's picture, then a drag of the slider's handle, then a new picture.
    cell = slider.locator("xpath=ancestor::div[contains(@class,'jp-Cell')][1]")
    img = cell.locator(".jp-OutputArea img").first
    expect(img).to_be_visible()
    before = cell.evaluate(_IMAGES)
    readout = slider.locator(".widget-readout").first
    value_before = readout.inner_text().strip()
    handle = slider.locator(".noUi-handle").first
    track = _settled_box(page, slider.locator(".noUi-target").first)  # the slide has stopped moving
    box = handle.bounding_box()
    assert box and track and track["width"] > 0, "the slider has no size on the slide"
    x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    right = x0 < track["x"] + track["width"] / 2
    x1 = x0 + (0.3 if right else -0.3) * track["width"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y0, steps=8)
    page.mouse.up()
    expect(readout).not_to_have_text(value_before)
    value_after = readout.inner_text().strip()
    deadline = time.monotonic() + EXPECT_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        now = cell.evaluate(_IMAGES)
        if any(src.startswith("data:image") and src not in before for src in now):
            break
        page.wait_for_timeout(250)
    else:
        raise AssertionError(f"the explorer's picture did not change in the slideshow after moving "
                             f"{SLIDER_LABEL} from {value_before} to {value_after} "
                             f"(waited {EXPECT_TIMEOUT_MS / 1000:g} s)")
    assert page.evaluate(_ERRORS, path) == []
