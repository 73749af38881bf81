"""Widgets of notebook 04 (the article's formulas, the correct loss, pitfalls)."""

from __future__ import annotations

__all__: list[str] = []
