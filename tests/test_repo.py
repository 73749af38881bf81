"""Contracts of the repository itself: pinned requirements, safe `make lab`, CI calls `make test`."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_requirements_are_pinned():
    lines = [ln.split("#")[0].strip() for ln in (REPO / "requirements.txt").read_text().splitlines()]
    reqs = [ln for ln in lines if ln]
    assert reqs and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", r) for r in reqs), reqs
    assert "torch==2.13.0" in reqs  # the CPU build; a newer torch pulls a multi-GB CUDA build


def test_make_lab_binds_localhost_with_token():
    lab = re.search(r"^lab:.*?(?=^\S)", (REPO / "Makefile").read_text(), re.S | re.M).group(0)
    assert "--ip=127.0.0.1" in lab and "root_dir=notebooks" in lab
    assert not re.search(r"token=\s*(''|\"\"|\s)", lab) and "disable_check_xsrf" not in lab


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    quick = readme[readme.index("## Quick start"):]
    quick = quick[:quick.index("\n## ", 5)]
    assert "make lab" in quick and "make test" in quick
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test\b", ci, re.M)
