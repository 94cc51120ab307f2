"""Two JSON values compared as a unified diff, one line per message or field: how a replay
shows a call that differs from the recorded one, and ``memo explain`` a call that differs
from the nearest memo entry."""

from __future__ import annotations

import difflib
import json
from typing import Any


def diff(name: str, old: Any, new: Any, *, was: str = "recorded", now: str = "now") -> list[str]:
    """A unified diff of two JSON values, indented, its files named ``was name`` and ``now
    name``; messages (``[[role, text], ...]``) are split into one line per line of text."""
    lines = difflib.unified_diff(
        _lines(old), _lines(new), fromfile=f"{was} {name}", tofile=f"{now} {name}", lineterm="", n=2
    )
    return ["    " + line for line in lines]


def _lines(value: Any) -> list[str]:
    if isinstance(value, list) and all(isinstance(item, list) and len(item) == 2 for item in value):
        out = []
        for role, text in value:
            out += [f"[{role}] {line}" for line in str(text).splitlines() or [""]]
        return out
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()
