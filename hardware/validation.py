"""Checks shared by the hardware config dataclasses (arms, safety limits, teleop devices)."""

from __future__ import annotations

import math


def require_positive_finite(config: object, *names: str) -> None:
    """Raise ValueError unless every field ``names`` of ``config`` is a positive finite number."""
    for name in names:
        value = getattr(config, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"{type(config).__name__}.{name} must be a positive finite number, got {value!r}")
