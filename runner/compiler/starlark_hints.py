"""Starlark's own errors, made to say the fix in a workflow's terms: a document field that is a
Starlark keyword (``as=``) written as its keyword argument (``as_=``), and a ``load()`` of a
misspelled name, which Starlark reports at the use with the suggestion the wrong way round."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import starlark as sl

from runner.errors import Diagnostic

KEYWORD_FIELDS = {"as": "as_", "if": "if_", "else": "else_"}
"""Document fields that are Starlark keywords, and the keyword arguments they are written as."""

_KEYWORD = re.compile(r"(?:reserved keyword `|unexpected keyword ')(?P<word>as|if|else)[`']")
_NOT_FOUND = re.compile(r"^Variable `(?P<used>\w+)` not found, did you mean `(?P<loaded>\w+)`\?$")
_TOP_LEVEL = r"^(?:def\s+{0}\b|{0}\s*=(?!=))"


def improved(diagnostic: Diagnostic, root: Path) -> Diagnostic:
    """``diagnostic`` said specifically, when it is one of the errors above; else unchanged.
    ``root`` is the workflow's folder, which ``load("//...")`` starts from."""
    if diagnostic.line is None or diagnostic.col is None:
        return diagnostic
    path = Path(diagnostic.file)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return diagnostic
    keyword = _KEYWORD.search(diagnostic.message)
    if keyword:
        return _keyword_argument(diagnostic, text, keyword.group("word"))
    missing = _NOT_FOUND.match(diagnostic.message)
    if missing:
        return _misspelled_load(diagnostic, (path, root, text), missing["used"], missing["loaded"])
    return diagnostic


def _keyword_argument(diagnostic: Diagnostic, text: str, word: str) -> Diagnostic:
    lines = text.splitlines()
    number, col = diagnostic.line or 0, diagnostic.col or 0
    line = lines[number - 1] if 0 < number <= len(lines) else ""
    if not re.match(rf"{word}\s*=(?!=)", line[max(col - 1, 0) :]):
        return diagnostic  # the keyword stands somewhere else: Starlark's message is right
    written = KEYWORD_FIELDS[word]
    return dataclasses.replace(
        diagnostic,
        message=f"`{word}` is a Starlark keyword, so the field {word!r} is written `{written}=`",
        hint=f"Write {written}=... instead of {word}=... (the document field is still {word!r}).",
    )


def _misspelled_load(
    diagnostic: Diagnostic, file: tuple[Path, Path, str], used: str, loaded: str
) -> Diagnostic:
    """``used`` is not defined, and ``loaded`` is: if ``loaded`` came from a ``load()`` of a
    file that defines ``used`` instead, the misspelling is in the ``load()``. ``file`` is the
    file's path, the workflow's folder and the file's text."""
    path, root, text = file
    try:
        loads = list(sl.parse(str(path), text).loads())
    except sl.StarlarkError:
        return diagnostic
    for load in loads:
        symbols = load.symbols
        if symbols.get(loaded) != loaded:
            continue
        try:
            base = root if load.module_id.startswith("//") else path.parent
            library = (base / load.module_id.removeprefix("//")).read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            return diagnostic
        defines = re.compile(_TOP_LEVEL.format(re.escape(used)), re.MULTILINE)
        if not defines.search(library):
            return diagnostic
        line, col = _position(text, loaded, diagnostic)
        return dataclasses.replace(
            diagnostic,
            line=line,
            col=col,
            message=(
                f"{load.module_id} has no symbol `{loaded}` to load; did you mean `{used}`, "
                "which this file uses?"
            ),
            hint=f'Load "{used}" from {load.module_id}.',
        )
    return diagnostic


def _position(text: str, symbol: str, diagnostic: Diagnostic) -> tuple[int | None, int | None]:
    """Where ``symbol`` stands quoted in a ``load(...)`` line; the use's position if nowhere."""
    quoted = re.compile(rf"""["']{re.escape(symbol)}["']""")
    for number, line in enumerate(text.splitlines(), start=1):
        found = quoted.search(line)
        if found and "load(" in line:
            return number, found.start() + 1
    return diagnostic.line, diagnostic.col
