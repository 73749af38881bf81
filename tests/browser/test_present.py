"""``make present``: the explorers as a Voilà app (code hidden, token auth), in headless Chromium.

Starts Voilà on ``apps/explorers.ipynb`` as ``make present`` does (127.0.0.1, a token), with
every Jupyter folder and ``$KDLIB_DATA`` in a temporary directory and the quick λ/T grid
(``KDLAB_PRESENT_QUICK=1``), then moves each explorer's slider and checks the picture changed.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kdlib.data import scratch_data_dir

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = REPO_ROOT / "apps" / "explorers.ipynb"
# Voilà runs the app (it trains the quick grid) before serving the page: on 2 cores busy with
# the rest of `make test` that took over 240 s once.
TIMEOUT_MS = 900_000
_IMAGES = "() => Array.from(document.querySelectorAll('img')).map(i => i.src)"
_CHANGED = """(before) => {
  const now = Array.from(document.querySelectorAll('img')).map(i => i.src);
  return now.some(src => src.startsWith('data:image') && !before.includes(src));
}"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _status(url):
    try:
        with urllib.request.build_opener(_NoRedirect).open(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture(scope="module")
def voila(tmp_path_factory):
    """Voilà serving the explorers app: yields (url, token)."""
    base = tmp_path_factory.mktemp("voila")
    dirs = {n: base / n for n in ("runtime", "config", "data", "ipython", "mplconfig", "kdlib-data", "cache")}
    for d in dirs.values():
        d.mkdir()
    scratch_data_dir(dirs["kdlib-data"])
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
           "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
           "IPYTHONDIR": str(dirs["ipython"]), "MPLCONFIGDIR": str(dirs["mplconfig"]),
           "KDLIB_DATA": str(dirs["kdlib-data"]), "KDLAB_PRESENT_QUICK": "1",
           "KDLAB_PRESENT_CACHE": str(dirs["cache"]), "JUPYTER_PLATFORM_DIRS": "1"}
    token, port = secrets.token_hex(16), _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = base / "voila.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "voila", str(APP), "--no-browser", "--Voila.ip=127.0.0.1",
             f"--port={port}", f"--token={token}"],
            cwd=APP.parent, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            try:
                _status(f"{url}/")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.25)
        else:
            raise RuntimeError(f"voila did not start:\n{log_path.read_text(errors='replace')[-4000:]}")
        yield url, token, log_path
    finally:  # Voilà and its kernels: the whole process group
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_app_needs_the_token(voila):
    url, token, _ = voila
    assert _status(f"{url}/") in (302, 403)  # to the login page, never the app
    assert _status(f"{url}/?token=wrong{token}") in (302, 403)


@pytest.mark.parametrize("slider_label", ["T", "λ"])
def test_slider_changes_the_picture_and_code_is_hidden(browser, voila, slider_label):
    from playwright.sync_api import expect

    url, token, log_path = voila
    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{url}/?token={token}", timeout=TIMEOUT_MS)
        name = re.compile(rf"^\s*{re.escape(slider_label)}\s*$")
        label = page.locator(".widget-label").filter(has_text=name)
        slider = page.locator(".widget-slider").filter(has=label).first
        expect(slider).to_be_visible()
        page.wait_for_function(_CHANGED, arg=[], timeout=TIMEOUT_MS)  # the explorers drew
        # code hidden: markdown cells only have input areas, and no line of code is in the page
        assert page.locator(".jp-CodeCell .jp-InputArea, .jp-InputArea-editor, .jp-InputPrompt").count() == 0
        assert page.locator(".jp-MarkdownOutput").count() > 0
        assert "set_num_threads(" not in page.content() and "TemperatureExplorer(" not in page.content()
        handle, readout = slider.locator(".noUi-handle").first, slider.locator(".widget-readout").first
        handle.scroll_into_view_if_needed()
        before_value, before_images = readout.inner_text().strip(), page.evaluate(_IMAGES)
        at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
        handle.focus()
        for _ in range(3):
            page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
        expect(readout).not_to_have_text(before_value)
        page.wait_for_function(_CHANGED, arg=before_images, timeout=TIMEOUT_MS)
    except Exception:
        print(log_path.read_text(errors="replace")[-4000:])
        raise
    finally:
        context.close()
