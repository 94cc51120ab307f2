"""Starlark workflow files -> document, through starlark-pyo3 (real Starlark, from starlark-rust).

A Starlark file is a pure graph builder: its builtins (``leaf``, ``sequence``, ..., ``workflow``)
return pieces of the workflow document, and ``workflow(...)`` is called exactly once. ``load()``
reaches other ``.star`` files under the workflow's own directory and nothing else; there is no
other I/O, no ``print`` and no clock.

Bounds: evaluation runs in a forked child (``runner.sandbox``) that may take ``EVAL_SECONDS``
and grow by ``EVAL_MEMORY_MB``; the document comes back through a pipe. Values handed to a
builtin must be JSON (``runner.compiler.starlark_values``).

Handles: the builtins first return each node as a handle that Starlark hands on untouched, so
that a node's values reach Python once, not once per enclosing builtin; a file that looks into
a node it built is evaluated again with nodes as dicts (``_document_pass``).

Positions: Starlark hands a Python builtin no call site. Every builtin call is numbered; when a
diagnostic needs a position, the file is evaluated once more with each builtin wrapped in a
Starlark lambda that passes ``call_stack()`` along, which gives the file and line of every call
in that one pass (the column is where the builtin's name stands on that line). Starlark is
deterministic, so the numbering is the same every time, and this costs nothing unless a
diagnostic needs a position.
"""

from __future__ import annotations

import marshal
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import starlark as sl

from runner.compiler.source import Document, Location, pointer_join
from runner.compiler.starlark_hints import KEYWORD_FIELDS, improved
from runner.compiler.starlark_values import (
    MAX_DEPTH,
    finite_float,
    infinite_literals,
    plain,
    values_read_once,
)
from runner.errors import CompileError, Diagnostic
from runner.sandbox import ChildFailed, run_bounded

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
RESERVED_FIELDS = {argument: name for name, argument in KEYWORD_FIELDS.items()}
"""Document fields whose names are Starlark keywords take a trailing underscore."""
EVAL_SECONDS = 10.0
"""Longest a workflow file may take to evaluate."""
EVAL_MEMORY_MB = 512
"""How much memory evaluating a workflow file may take."""
EVALUATIONS: Counter[str] = Counter()
"""How many times files were evaluated, by pass (``document``, ``positions``; ``dicts``: the
document pass once more, its builtins returning dicts, for a file that looks into a node)."""
_MARK = "__branchleaf_call__"
_PREFIX = "_branchleaf_"
_PRELUDE = "; ".join(
    f"{name} = lambda *a, **k: {_PREFIX}{name}(call_stack(), *a, **k)"
    for name in (*NODE_BUILTINS, "workflow")
)
"""The first line of every file in the positions pass: each builtin wrapped so that it hears
where it was called from."""
_FRAME = re.compile(r"^\s*\* (?P<file>.+):(?P<line>\d+), in ", re.MULTILINE)
_SPAN = re.compile(r"-->\s*(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)")
_TOO_DEEP = re.compile(r"Maximum depth of \d+ exceeded while converting")
_ERROR_LINE = re.compile(r"^error:\s*(?:[A-Za-z_]+Error:\s*)?(?P<message>.*)$", re.MULTILINE)
_TELLERS = r"(?:type|dir|getattr|hasattr)"
_INSPECTS = re.compile(
    rf"(?<![\w.]){_TELLERS}\s*\(|[=(,:\[]\s*{_TELLERS}\s*(?:[,)\]}}]|$)", re.MULTILINE
)
"""A call of a builtin that tells a handle from a dict without failing (``type(node)``), or
the builtin itself handed on (``kind_of = type``); a word in a prompt may match too, which only
costs the file its handles."""
_HANDLE_SHOWN = b"<opaque python object>"
"""What Starlark makes of a handle turned into a string (``str(node)``, ``"%s" % node``)."""


class _BuiltinError(Exception):
    """Raised inside a builtin; Starlark attaches the call's span to it."""


class _Inspects(Exception):
    """A file evaluated with handles may tell them from dicts: it is evaluated with dicts."""


@dataclass(slots=True)
class _Evaluation:
    """One evaluation of a workflow file and the files it loads."""

    root: Path
    locating: bool = False
    """The positions pass: builtins hear their call sites, recorded in ``sites``."""
    handles: bool = False
    """Builtins return each node as a handle, not as a dict (see ``_document_pass``)."""
    deadline: float = 0.0
    calls: int = 0
    workflows: list[dict[str, Any]] = field(default_factory=list)
    modules: dict[Path, Any] = field(default_factory=dict)
    loading: list[Path] = field(default_factory=list)
    sites: dict[int, Location] = field(default_factory=dict)
    texts: dict[str, list[str]] = field(default_factory=dict)
    """The lines of every file evaluated, by the name Starlark gives it."""
    seen: Counter[tuple[str, int, str]] = field(default_factory=Counter)
    problems: list[Diagnostic] = field(default_factory=list)
    """Problems found in the source text of the files evaluated."""

    def module(self) -> Any:
        module = sl.Module()
        prefix = _PREFIX if self.locating else ""
        for kind in NODE_BUILTINS:
            module.add_callable(prefix + kind, self._builtin(kind))
        module.add_callable(prefix + "workflow", self._workflow)
        module.add_callable("float", finite_float)
        return module

    def _count(self, args: tuple[Any, ...], name: str) -> tuple[int, tuple[Any, ...]]:
        """The call's number and its own arguments (in the positions pass, where it stands)."""
        self.calls += 1
        if self.locating:
            self._site(self.calls, str(args[0]), name)
            args = args[1:]
        return self.calls, args

    def _site(self, call: int, stack: str, name: str) -> None:
        frames = _FRAME.findall(stack)
        if len(frames) < 2:  # the caller's frame, then the wrapper's
            return
        file, line_text = frames[-2]
        line = int(line_text) - 1  # the prelude's line comes first
        lines = self.texts.get(file, [])
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        # Several calls of one builtin on one line: the n-th call, the n-th occurrence.
        columns = [m.start() + 1 for m in re.finditer(rf"\b{name}\s*\(", text)]
        nth = self.seen[(file, line, name)]
        self.seen[(file, line, name)] += 1
        col = columns[nth % len(columns)] if columns else len(text) - len(text.lstrip()) + 1
        self.sites[call] = (file, line, col)

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
                field_name = RESERVED_FIELDS.get(key, key)
                out[field_name] = plain(value, f"{name}(): {field_name}", 1)
        return out

    def _builtin(self, kind: str) -> Callable[..., Any]:
        def build(*args: Any, **kwargs: Any) -> Any:
            call, args = self._count(args, kind)
            node = {"kind": kind, **self._fields(kind, args, kwargs), _MARK: call}
            return sl.OpaquePythonObject(node) if self.handles else node

        build.__name__ = kind
        return build

    def _workflow(self, *args: Any, **kwargs: Any) -> None:
        call, args = self._count(args, "workflow")
        document = {"version": 1, **self._fields("workflow", args, kwargs), _MARK: call}
        self.workflows.append(document)

    def evaluate(self, path: Path, display: str) -> Any:
        """Evaluate one file and return its module, frozen."""
        text = _read(path, display)
        if self.handles and _INSPECTS.search(text):
            raise _Inspects(display)
        self.problems.extend(infinite_literals(display, text))
        module = self.module()
        globals_ = sl.Globals.standard()
        if self.locating:
            self.texts[display] = text.splitlines()
            text = f"{_PRELUDE}\n{text}"
            globals_ = sl.Globals.extended_by([sl.LibraryExtension.CallStack])
        ast = sl.parse(display, text)
        options = sl.EvalOptions(check_cancelled=lambda: time.monotonic() > self.deadline)
        sl.eval_with(options, module, ast, globals_, self._loader(path))
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
    if _TOO_DEEP.search(message):  # starlark-pyo3's own bound on what it hands to a builtin
        message = f"a value given here is nested more than {MAX_DEPTH} levels deep"
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
    workflows, again = _bounded(
        path, lambda: _document_pass(file, path, root), "document", attempts=2
    )
    if again:
        EVALUATIONS["dicts"] += 1
    if not workflows:
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
    document = _strip_marks(workflows[0], "", calls)
    sites: dict[int, Location] | None = None

    def locate_call(call: int) -> Location | None:
        nonlocal sites
        if sites is None:  # the one positions pass, for every call at once
            try:
                sites = _bounded(path, lambda: _positions_pass(file, path, root), "positions")
            except CompileError:
                sites = {}
        return sites.get(call)

    if len(workflows) > 1:
        where = locate_call(workflows[1][_MARK])
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


_Answer = tuple[Literal["ok"], Any] | tuple[Literal["error"], list[dict[str, Any]]]
"""What a child evaluation sends back: its result, or its diagnostics as JSON objects."""


def _bounded(display: str, work: Callable[[], _Answer], kind: str, attempts: int = 1) -> Any:
    """What ``work`` found, evaluated in a child bounded in time and memory (``EVAL_SECONDS``
    for each of its ``attempts`` evaluations)."""
    EVALUATIONS[kind] += 1
    seconds = attempts * EVAL_SECONDS + 1.0
    try:
        answer = run_bounded(work, seconds=seconds, memory_mb=EVAL_MEMORY_MB)
    except ChildFailed as exc:
        hint = "Workflow files only build the graph; move heavy computation elsewhere."
        if exc.why == "time":
            message = f"evaluating {display} took longer than {EVAL_SECONDS:g} s"
        else:
            message = f"evaluating {display} used more than {EVAL_MEMORY_MB} MB of memory"
        raise CompileError(
            [Diagnostic(file=display, rule="starlark", message=message, hint=hint)]
        ) from exc
    if answer[0] == "error":
        raise CompileError([Diagnostic(**found) for found in answer[1]])
    return answer[1]


def _document_pass(file: Path, display: str, root: Path) -> _Answer:
    """The workflow documents the file builds, and whether that took a second evaluation
    (in the child).

    starlark-pyo3 hands a builtin its arguments converted value by value, and converts the
    dict a builtin returns back into Starlark value by value too: a leaf's values cross five
    times on their way into ``workflow()`` (into ``leaf``, back, into ``sequence``, back, into
    ``workflow``), and each crossing costs about a microsecond a value. So the file is first
    evaluated with builtins that return each node as a handle, which Starlark carries as it is
    and hands back to the builtin it is given to as the node itself: each value crosses once.

    A file may look into a node it built: read it, change it, copy it. Every such use of a
    handle fails, and so does every error the file makes; either way the file is evaluated
    again with builtins that return dicts, as the language has them, and its document or its
    errors are that evaluation's. What does not fail on a handle tells one from a dict by
    ``type``, ``dir``, ``getattr`` or ``hasattr`` (a file that names one of them is evaluated
    with dicts at once) or by the text a handle turns into (a document holding that text is
    made again with dicts). A node is never equal to another node however it is built: each
    holds its own call number, so comparing nodes gives the same answer either way.
    """
    started = time.monotonic()
    try:
        workflows = _run(file, display, root, handles=True).workflows
    except _Inspects:
        pass
    except CompileError as exc:
        if time.monotonic() - started > EVAL_SECONDS:  # it ran out of time: so would the next
            return "error", [found.to_json() for found in exc.diagnostics]
    else:
        if _HANDLE_SHOWN not in marshal.dumps(workflows):
            return "ok", (workflows, False)
    try:
        return "ok", (_run(file, display, root).workflows, True)
    except CompileError as exc:
        return "error", [found.to_json() for found in exc.diagnostics]


def _positions_pass(file: Path, display: str, root: Path) -> _Answer:
    """Where each numbered builtin call stands (in the child)."""
    try:
        return "ok", _run(file, display, root, locating=True).sites
    except CompileError as exc:
        return "error", [found.to_json() for found in exc.diagnostics]


def _run(
    file: Path, display: str, root: Path, *, locating: bool = False, handles: bool = False
) -> _Evaluation:
    deadline = time.monotonic() + EVAL_SECONDS
    evaluation = _Evaluation(root=root, locating=locating, handles=handles, deadline=deadline)
    try:
        with values_read_once():
            evaluation.evaluate(file, display)
    except _BuiltinError as exc:  # a problem reading the top-level file itself
        raise CompileError([Diagnostic(file=display, rule="starlark", message=str(exc))]) from exc
    except sl.StarlarkError as exc:
        diagnostic = improved(_starlark_diagnostic(display, exc), root)
        if "cancelled" in diagnostic.message.lower():
            diagnostic = Diagnostic(
                file=display,
                rule="starlark",
                message=f"evaluating {display} took longer than {EVAL_SECONDS:g} s",
                hint="Workflow files only build the graph; move heavy computation elsewhere.",
            )
        raise CompileError([diagnostic]) from exc
    except RecursionError as exc:
        raise CompileError(
            [Diagnostic(file=display, rule="starlark", message="evaluation recursed too deeply")]
        ) from exc
    if evaluation.problems:
        raise CompileError(evaluation.problems)
    return evaluation


def _strip_marks(value: Any, pointer: str, calls: dict[str, int]) -> Any:
    """Remove the call numbers from the document, remembering them by JSON pointer."""
    if isinstance(value, dict):
        if _MARK in value:
            calls[pointer] = value[_MARK]
        return {
            key: _strip_marks(item, _child(pointer, key), calls)
            if isinstance(item, dict | list)
            else item
            for key, item in value.items()
            if key != _MARK
        }
    if isinstance(value, list):
        return [
            _strip_marks(item, f"{pointer}/{i}", calls) if isinstance(item, dict | list) else item
            for i, item in enumerate(value)
        ]
    return value


def _child(pointer: str, key: str) -> str:
    return pointer_join(pointer, key) if "~" in key or "/" in key else f"{pointer}/{key}"
