"""Figures of notebook 02 (temperature, dark knowledge)."""

from __future__ import annotations

__all__: list[str] = []
