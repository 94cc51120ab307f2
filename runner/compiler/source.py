"""A loaded workflow document and the way back from its JSON pointers to the source text."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.errors import Diagnostic

Location = tuple[str, int, int]
"""A file with a 1-based line and column in it."""


def pointer_join(pointer: str, token: str | int) -> str:
    """``pointer`` extended by one reference token, escaped as RFC 6901 says."""
    text = str(token).replace("~", "~0").replace("/", "~1")
    return f"{pointer}/{text}"


def pointer_parent(pointer: str) -> str | None:
    """The pointer one level up, or ``None`` at the root."""
    if not pointer:
        return None
    return pointer.rsplit("/", 1)[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """A workflow document as loaded, before validation."""

    path: str
    """The source file, as the user named it."""
    data: Any
    """The JSON document (plain dicts, lists and scalars)."""
    language: str
    """``yaml``, ``json`` or ``starlark``."""
    locator: Callable[[str], Location | None] = field(default=lambda _pointer: None)
    """Finds the source position of a JSON pointer, where the source has one."""

    def locate(self, pointer: str) -> Location | None:
        """The position of ``pointer``, or of its nearest ancestor that has one."""
        current: str | None = pointer
        while current is not None:
            found = self.locator(current)
            if found is not None:
                return found
            current = pointer_parent(current)
        return None

    def diagnostic(
        self, pointer: str, message: str, *, rule: str, hint: str | None = None
    ) -> Diagnostic:
        """A diagnostic about ``pointer``, placed in the source as exactly as it can be."""
        found = self.locate(pointer)
        file, line, col = found if found else (self.path, None, None)
        return Diagnostic(
            file=file,
            line=line,
            col=col,
            pointer=pointer,
            rule=rule,
            message=message,
            hint=hint,
        )


def table_locator(table: Mapping[str, Location]) -> Callable[[str], Location | None]:
    """A locator over a precomputed pointer -> position table."""
    return table.get
