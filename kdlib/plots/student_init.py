"""Figures of notebook 03 (initialising a student from the teacher)."""

from __future__ import annotations

__all__: list[str] = []
