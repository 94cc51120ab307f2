"""Durations as people read them, the same in the terminal and in reports."""

from __future__ import annotations


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
