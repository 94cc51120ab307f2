"""Starlark workflow files -> document, through starlark-pyo3 (real Starlark, from starlark-rust).

A Starlark file is a pure graph builder: its builtins (``leaf``, ``sequence``, ..., ``workflow``)
return pieces of the workflow document, and ``workflow(...)`` is called exactly once. ``load()``
reaches other ``.star`` files under the workflow's own directory and nothing else; there is no
other I/O, no ``print`` and no clock.

Positions: Starlark hands a Python builtin no call site, but an error raised inside a builtin
carries one. Every builtin call is numbered; to place a diagnostic, the file is evaluated again
with the numbered call raising, and the span of that error is the call's file:line:col. Starlark
is deterministic, so the numbering is the same every time, and this costs nothing unless a
diagnostic needs a position.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import starlark as sl

from runner.canonical import thaw
from runner.compiler.source import Document, Location, pointer_join
from runner.errors import CompileError, Diagnostic

NODE_BUILTINS = (
    "leaf",
    "command",
    "sequence",
    "branch",
    "expand",
    "cond",
    "loop_until",
    "reduce",
    "tournament",
    "pareto",
    "teacher_review",
)
RESERVED_FIELDS = {"as_": "as", "if_": "if", "else_": "else"}
"""Document fields whose names are Starlark keywords take a trailing underscore."""
EVAL_SECONDS = 10.0
"""Longest a workflow file may take to evaluate."""
_MARK = "__branchleaf_call__"
_SPAN = re.compile(r"-->\s*(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)")
_ERROR_LINE = re.compile(r"^error:\s*(?:[A-Za-z_]+Error:\s*)?(?P<message>.*)$", re.MULTILINE)


class _BuiltinError(Exception):
    """Raised inside a builtin; Starlark attaches the call's span to it."""


class _Stop(Exception):
    """Raised by the numbered call being located."""


@dataclass(slots=True)
class _Evaluation:
    """One evaluation of a workflow file and the files it loads."""

    root: Path
    stop_at: int | None = None
    deadline: float = 0.0
    calls: int = 0
    workflows: list[dict[str, Any]] = field(default_factory=list)
    modules: dict[Path, Any] = field(default_factory=dict)
    loading: list[Path] = field(default_factory=list)

    def module(self) -> Any:
        module = sl.Module()
        for kind in NODE_BUILTINS:
            module.add_callable(kind, self._builtin(kind))
        module.add_callable("workflow", self._workflow)
        return module

    def _count(self) -> int:
        self.calls += 1
        if self.calls == self.stop_at:
            raise _Stop()
        return self.calls

    def _fields(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if args:
            raise _BuiltinError(
                f"{name}() takes keyword arguments only, such as {name}(id=..., ...)"
            )
        if "kind" in kwargs:
            raise _BuiltinError(f"{name}() sets kind itself; leave the kind argument out")
        out: dict[str, Any] = {}
        for key, value in kwargs.items():
            if value is not None:
                out[RESERVED_FIELDS.get(key, key)] = thaw(value)
        return out

    def _builtin(self, kind: str) -> Callable[..., dict[str, Any]]:
        def build(*args: Any, **kwargs: Any) -> dict[str, Any]:
            call = self._count()
            return {"kind": kind, **self._fields(kind, args, kwargs), _MARK: call}

        build.__name__ = kind
        return build

    def _workflow(self, *args: Any, **kwargs: Any) -> None:
        call = self._count()
        document = {"version": 1, **self._fields("workflow", args, kwargs), _MARK: call}
        self.workflows.append(document)

    def evaluate(self, path: Path, display: str) -> Any:
        """Evaluate one file and return its module, frozen."""
        text = _read(path, display)
        module = self.module()
        ast = sl.parse(display, text)
        options = sl.EvalOptions(check_cancelled=lambda: time.monotonic() > self.deadline)
        sl.eval_with(options, module, ast, sl.Globals.standard(), self._loader(path))
        return module.freeze()

    def _loader(self, current: Path) -> Any:
        def load(name: str) -> Any:
            target = self._resolve(current, name)
            if target in self.loading:
                chain = " -> ".join(p.name for p in [*self.loading, target])
                raise _BuiltinError(f"load() cycle: {chain}")
            if target not in self.modules:
                self.loading.append(target)
                try:
                    self.modules[target] = self.evaluate(target, _display(target))
                finally:
                    self.loading.pop()
            return self.modules[target]

        return sl.FileLoader(load)

    def _resolve(self, current: Path, name: str) -> Path:
        if name.startswith("//"):
            target = self.root / name[2:]
        elif os.path.isabs(name):
            raise _BuiltinError(
                f"load({name!r}) names an absolute path; load files by a path relative to "
                "this file, or from the workflow directory as //path.star"
            )
        else:
            target = current.parent / name
        if not name.endswith(".star"):
            raise _BuiltinError(f"load({name!r}) can only load .star files")
        resolved = target.resolve()
        if not resolved.is_relative_to(self.root):
            raise _BuiltinError(
                f"load({name!r}) reaches outside the workflow's folder "
                f"{_display(self.root)}{os.sep}; only .star files under it can be loaded"
            )
        if not resolved.is_file():
            raise _BuiltinError(f"load({name!r}): no such file {_display(resolved)}")
        return resolved


def _display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _read(path: Path, display: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _BuiltinError(f"cannot read {display}: {exc}") from exc


def _starlark_diagnostic(display: str, exc: Exception) -> Diagnostic:
    text = str(exc)
    span = _SPAN.search(text)
    found = _ERROR_LINE.search(text)
    message = found.group("message") if found else text.strip().splitlines()[0]
    return Diagnostic(
        file=span.group("file") if span else display,
        line=int(span.group("line")) if span else None,
        col=int(span.group("col")) if span else None,
        rule="starlark",
        message=message,
        hint=None,
    )


def load_starlark(path: str, *, library_ok: bool = False) -> Document | None:
    """Evaluate a Starlark workflow file into its document.

    Returns ``None`` for a library file (one that never calls ``workflow()``) when
    ``library_ok``; such files are still evaluated, so their errors are reported.
    """
    file = Path(path).resolve()
    root = file.parent
    evaluation = _run(file, path, root, stop_at=None)
    if not evaluation.workflows:
        if library_ok:
            return None
        raise CompileError(
            [
                Diagnostic(
                    file=path,
                    rule="starlark",
                    message="the file never calls workflow(...)",
                    hint="Call workflow(name=..., steps=...) exactly once at the end of the file.",
                )
            ]
        )
    calls: dict[str, int] = {}
    document = _strip_marks(evaluation.workflows[0], "", calls)
    located: dict[int, Location | None] = {}

    def locate_call(call: int) -> Location | None:
        if call not in located:
            located[call] = _locate(file, path, root, call)
        return located[call]

    if len(evaluation.workflows) > 1:
        second = evaluation.workflows[1][_MARK]
        where = locate_call(second)
        file_name, line, col = where if where else (path, None, None)
        raise CompileError(
            [
                Diagnostic(
                    file=file_name,
                    line=line,
                    col=col,
                    rule="starlark",
                    message="workflow(...) is called more than once",
                    hint="Build the steps with helper functions and call workflow(...) once.",
                )
            ]
        )

    def locator(pointer: str) -> Location | None:
        call = calls.get(pointer)
        return None if call is None else locate_call(call)

    return Document(path=path, data=document, language="starlark", locator=locator)


def loaded_files(path: str) -> frozenset[Path]:
    """The files a Starlark file loads, directly or through the files it loads, resolved.

    Read from the ``load()`` statements without evaluating anything, so that the loads of a
    file that would fail to evaluate (a library it uses broke it) are found too. A load the
    loader would refuse, and a file that cannot be read or parsed, are not followed.
    """
    file = Path(path).resolve()
    evaluation = _Evaluation(root=file.parent)
    found: set[Path] = set()
    pending = [file]
    while pending:
        current = pending.pop()
        try:
            ast = sl.parse(_display(current), current.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, sl.StarlarkError):
            continue
        for load in ast.loads():
            try:
                target = evaluation._resolve(current, load.module_id)
            except _BuiltinError:
                continue
            if target not in found:
                found.add(target)
                pending.append(target)
    return frozenset(found)


def _run(file: Path, display: str, root: Path, *, stop_at: int | None) -> _Evaluation:
    evaluation = _Evaluation(root=root, stop_at=stop_at, deadline=time.monotonic() + EVAL_SECONDS)
    try:
        evaluation.evaluate(file, display)
    except _BuiltinError as exc:  # a problem reading the top-level file itself
        raise CompileError([Diagnostic(file=display, rule="starlark", message=str(exc))]) from exc
    except sl.StarlarkError as exc:
        if stop_at is not None and "_Stop" in str(exc):
            raise
        diagnostic = _starlark_diagnostic(display, exc)
        if "cancelled" in diagnostic.message.lower():
            diagnostic = Diagnostic(
                file=display,
                rule="starlark",
                message=f"evaluation took longer than {EVAL_SECONDS:g} s",
                hint="Workflow files only build the graph; move heavy computation elsewhere.",
            )
        raise CompileError([diagnostic]) from exc
    return evaluation


def _locate(file: Path, display: str, root: Path, call: int) -> Location | None:
    try:
        _run(file, display, root, stop_at=call)
    except sl.StarlarkError as exc:
        span = _SPAN.search(str(exc))
        if span:
            return (span.group("file"), int(span.group("line")), int(span.group("col")))
    return None


def _strip_marks(value: Any, pointer: str, calls: dict[str, int]) -> Any:
    """Remove the call numbers from the document, remembering them by JSON pointer."""
    if isinstance(value, dict):
        if _MARK in value:
            calls[pointer] = value[_MARK]
        return {
            key: _strip_marks(item, pointer_join(pointer, key), calls)
            for key, item in value.items()
            if key != _MARK
        }
    if isinstance(value, list):
        return [_strip_marks(item, pointer_join(pointer, i), calls) for i, item in enumerate(value)]
    return value
