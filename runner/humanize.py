"""Durations and costs as people read them, the same in the terminal and in reports."""

from __future__ import annotations

import math


def duration(seconds: float) -> str:
    """``120 ms``, ``1.8 s``, ``2m 05s``, ``1h 02m``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def cost(usd: float) -> str:
    """``$0`` for nothing, two significant digits below a cent (``$0.000042``, for the models
    whose calls cost a few millionths of a dollar), cents above (``$1.25``)."""
    if usd == 0:
        return "$0"
    if abs(usd) >= 0.01:
        return f"${usd:,.2f}"
    decimals = 1 - math.floor(math.log10(abs(usd)))
    text = f"{usd:.{decimals}f}".rstrip("0").rstrip(".")
    return f"${text}"
