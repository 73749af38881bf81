"""A clean screen for a class: ``make lab`` opens without JupyterLab's news pop-up.

``make setup`` installs ``tools/jupyterlab-overrides.json`` as ``.venv``'s JupyterLab
``overrides.json`` (``fetchNews: "false"``). Two servers with no user settings at all (unlike the
``lab`` fixture's, which silence notifications for the other tests): one reading the shipped
overrides, and a control without them, which shows that this JupyterLab does ask ("Would you
like to get notified about official Jupyter news?") and that the test would see it.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = REPO_ROOT / "tools" / "jupyterlab-overrides.json"
EXPECT_TIMEOUT_MS = 60_000
NEWS = "official Jupyter news"
SETTLE_MS = 5_000   # after the control's prompt time: the prompt shows within ~1 s of the restore
PLUGIN = "@jupyterlab/apputils-extension:notification"


def _default_fetch_news(server) -> str:
    """The server's default of ``fetchNews`` (JupyterLab applies overrides to the schema defaults)."""
    request = urllib.request.Request(f"{server.url}/lab/api/settings/{PLUGIN}",
                                     headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["schema"]["properties"]["fetchNews"]["default"]


def _open_lab(browser, server):
    """A page on ``server``'s JupyterLab, once the application has restored its layout."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{server.url}/lab?token={server.token}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.restored", timeout=EXPECT_TIMEOUT_MS)
    page.evaluate("() => window.jupyterapp.restored")
    return context, page


def test_lab_opens_without_the_news_prompt(browser, lab_factory, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    news = f"text={NEWS}"

    # Control: no overrides (an empty application settings folder): JupyterLab asks.
    empty = tmp_path / "no-overrides"
    empty.mkdir()
    (tmp_path / "control").mkdir()
    with lab_factory(tmp_path / "control", app_settings_dir=empty) as server:
        assert _default_fetch_news(server) == "none"
        context, page = _open_lab(browser, server)
        try:
            expect(page.locator(news).first).to_be_visible()
        finally:
            context.close()

    # The project's overrides, where `make setup` puts them: no prompt, and the setting reads "false".
    shipped = tmp_path / "app-settings"
    shipped.mkdir()
    shutil.copy2(OVERRIDES, shipped / "overrides.json")
    (tmp_path / "project").mkdir()
    with lab_factory(tmp_path / "project", app_settings_dir=shipped) as server:
        assert _default_fetch_news(server) == "false"
        context, page = _open_lab(browser, server)
        try:
            page.wait_for_timeout(SETTLE_MS)
            expect(page.locator(news)).to_have_count(0)
            expect(page.locator(".jp-Launcher, .jp-DirListing").first).to_be_visible()
        finally:
            context.close()
