"""docs/security.md names the tests that hold Branchleaf to each promise: every one exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "security.md"
# `tests/x.py`, `tests/x.py::test_name` and a following `::test_other` (same file).
_NAMED = re.compile(r"`(tests/[\w/]+\.py)?((?:::\w+)?)`")


def named_tests() -> list[tuple[str, str]]:
    """(file, test name or '') for every test the page names, in order."""
    found: list[tuple[str, str]] = []
    last = ""
    for match in _NAMED.finditer(DOC.read_text(encoding="utf-8")):
        path, name = match.group(1), match.group(2).lstrip(":")
        if path is None and not name:
            continue
        if path is None:
            path = last
        last = path
        found.append((path, name))
    return found


def test_every_test_the_security_page_names_exists() -> None:
    named = named_tests()
    assert len(named) > 20
    for path, name in named:
        source = ROOT / path
        assert source.is_file(), f"docs/security.md names {path}, which does not exist"
        if name:
            text = source.read_text(encoding="utf-8")
            assert re.search(rf"^(async )?def {name}\b", text, re.MULTILINE), (
                f"docs/security.md names {path}::{name}, which is not defined there"
            )
