"""``make book`` (tools/build_book.py): the stored notebooks as a site that reads offline.

The book is built once into a temporary folder (about 15 s here). Checks on its files (no
browser needed): a page per notebook in the sidebar of every page, previous/next links in
reading order, every stored picture (cell outputs and the pictures held in widgets' state) in
its page, nothing loaded from the network and MathJax inside the site. In headless Chromium
with every non-``file:`` request aborted and the context offline: notebook 02's formulas are
typeset by the local MathJax (no raw TeX left), and Sphinx's search finds "temperature".
"""

from __future__ import annotations

import base64
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow  # builds the whole book

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
EXPECT_TIMEOUT_MS = 60_000
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _load_tool():
    spec = importlib.util.spec_from_file_location("build_book", REPO_ROOT / "tools" / "build_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("book")
    assert _load_tool().main(["--out", str(out)]) == 0
    return out


def _page(book, stem) -> str:
    return (book / f"{stem}.html").read_text(encoding="utf-8")


def _stored_pngs(nb) -> list[str]:
    """Every stored PNG of a notebook: cell outputs and ``Output`` widgets' saved outputs."""
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    outputs += [o for m in state.values() if m.get("model_name") == "OutputModel"
                for o in m.get("state", {}).get("outputs", [])]
    return ["".join(o["data"]["image/png"].split()) for o in outputs if "image/png" in o.get("data", {})]


def test_every_page_has_the_sidebar_and_links_in_reading_order(book):
    assert NOTEBOOKS
    stems = [nb.stem for nb in NOTEBOOKS]
    assert (book / "index.html").is_file() and (book / "searchindex.js").is_file()
    for i, stem in enumerate(stems):
        page = _page(book, stem)
        sidebar = page[page.index('class="bd-sidebar-primary'):page.index('class="bd-main"')]
        for other in stems:
            assert f'href="{other}.html"' in sidebar or other == stem, (stem, other)
        prev_href = re.search(r'class="left-prev"\s+href="([^"]+)"', page)
        next_href = re.search(r'class="right-next"\s+href="([^"]+)"', page)
        assert prev_href and prev_href.group(1) == (f"{stems[i - 1]}.html" if i else "index.html")
        if i + 1 < len(stems):
            assert next_href and next_href.group(1) == f"{stems[i + 1]}.html", stem
        else:
            assert next_href is None, stem


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_stored_picture_is_in_its_page(book, nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    page = _page(book, nb_path.stem)
    shown = {base64.b64encode((book / src).read_bytes()).decode()
             for src in re.findall(r'<img [^>]*src="(_images/[^"]+\.png)"', page)}
    pngs = _stored_pngs(nb)
    missing = [i for i, png in enumerate(pngs) if png not in shown]
    assert not missing, f"{nb_path.name}: stored PNGs {missing} of {len(pngs)} are not in the page"
    assert "application/vnd.jupyter.widget-view+json" not in page  # no dead widget placeholders


def test_nothing_is_loaded_from_the_network(book):
    for path in [book / "index.html", book / "search.html", *(book / f"{nb.stem}.html" for nb in NOTEBOOKS)]:
        page = path.read_text(encoding="utf-8")
        tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", page)
        remote = [t for t in tags if re.search(r'(?:src|href)="(?:https?:)?//', t)]
        assert not remote, f"{path.name} loads from the network: {remote[:3]}"
    assert (book / "_static" / "mathjax" / "MathJax.js").is_file()
    assert (book / "_static" / "mathjax" / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert 'src="_static/mathjax/MathJax.js' in _page(book, "02_soft_targets")


@pytest.fixture
def offline_page(browser, request):
    """A page whose context is offline and aborts every request that is not ``file:``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, offline=True)
    blocked: list[str] = []

    def route(r):
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.blocked = blocked
    yield page
    context.close()


_MATH_DONE = """() => {
  const hub = window.MathJax && window.MathJax.Hub;
  const math = document.querySelectorAll('span.math.notranslate, div.math.notranslate');
  return !!hub && hub.queue.pending === 0 && math.length > 0 &&
         Array.from(math).every(m => m.querySelector('script[type^="math/tex"]'));
}"""


@pytest.mark.browser
def test_formulas_render_offline(book, offline_page):
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    page = offline_page
    page.goto((book / "02_soft_targets.html").as_uri())
    page.wait_for_function(_MATH_DONE, timeout=EXPECT_TIMEOUT_MS)   # every formula typeset
    expect(page.locator("span.MathJax").first).to_be_visible()
    assert page.locator(".MathJax_Display").count() > 0              # display maths too
    assert page.locator(".merror, .noError").count() == 0            # no TeX error
    text = page.evaluate("() => document.body.innerText")
    assert "\\mathrm{softmax}" not in text and "$$" not in text, "raw TeX is visible"
    assert page.blocked == [], f"the page asked the network for {page.blocked}"


@pytest.mark.browser
def test_search_finds_temperature_offline(book, offline_page):
    from playwright.sync_api import expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    page = offline_page
    page.goto((book / "search.html").as_uri() + "?q=temperature")
    results = page.locator("ul.search li a")
    expect(results.first).to_be_visible()
    hrefs = [results.nth(i).get_attribute("href") for i in range(results.count())]
    assert any(h.startswith("02_soft_targets.html") for h in hrefs), hrefs
    assert page.blocked == [], f"the search page asked the network for {page.blocked}"
