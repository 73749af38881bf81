"""Sphinx configuration of the offline book (``make book``; driver: ``tools/build_book.py``).

Everything a page needs ships inside the site: the theme's assets, the search index and
MathJax 2.7 from the ``jupyter-server-mathjax`` package (copied to ``_static/mathjax/`` after
the build). No CDN, no download at build time, no notebook execution.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import jupyter_server_mathjax

MATHJAX_DIR = Path(jupyter_server_mathjax.__file__).parent / "static"  # MathJax 2.7.9

project = "kdlab"
author = "kdlab"
copyright = "kdlab contributors"
language = "en"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["**.ipynb_checkpoints"]

# The notebooks are stored with outputs: read them as they are.
nb_execution_mode = "off"
nb_ipywidgets_js = {}                      # no widget manager from a CDN (widgets are made static)
nb_render_markdown_format = "myst"         # text/markdown outputs (say_* prose) with their maths
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_dmath_double_inline = True
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]

# MathJax 2 from the package, HTML-CSS output with the STIX-Web fonts it ships (as the
# classic notebook configured it); loaded from _static/, relative to each page.
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {
    # MyST-NB marks notebook pages tex2jax_ignore (a stray "$" in an output is not maths); the
    # formulas are Sphinx's "math" elements, which MathJax processes inside ignored ones.
    "tex2jax": {"processClass": "math|tex2jax_process", "ignoreClass": "tex2jax_ignore|document"},
    "HTML-CSS": {"availableFonts": [], "imageFont": None, "preferredFont": None,
                 "webFont": "STIX-Web", "linebreaks": {"automatic": True}},
    "menuSettings": {"zoom": "None"},
    "showMathMenu": False,
    "messageStyle": "none",
}

html_theme = "sphinx_book_theme"
html_title = "kdlab: knowledge distillation"
html_static_path = ["_static"]
html_css_files = ["kdlab-book.css"]
html_copy_source = False
html_show_sourcelink = False
html_last_updated_fmt = None
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "use_source_button": False,
    "use_issues_button": False,
    "use_edit_page_button": False,
    "navigation_with_keys": True,
    "home_page_in_toc": True,
}


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        shutil.copytree(MATHJAX_DIR, Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.py", "__pycache__"))


def setup(app):
    app.connect("build-finished", _copy_mathjax)
