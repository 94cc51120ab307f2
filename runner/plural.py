"""Counts in messages: ``1 model call``, ``2 model calls``."""

from __future__ import annotations


def plural(count: int, one: str, many: str | None = None) -> str:
    """``count`` followed by ``one``, or by ``many`` (default: ``one`` + ``s``) unless it is 1."""
    return f"{count} {one if count == 1 else many or one + 's'}"
