"""Figures of notebook 05 (lambda / T tuning, cross-validation, seeds)."""

from __future__ import annotations

__all__: list[str] = []
