"""Mock scripts: what the mock provider answers for which node ids, so tests and demos can stage
any scenario (replies, sequences, judge scores, failures, latencies).

    defaults: {latency_ms: 0}
    nodes:
      "review_one*": {reply: {ok: true}}
      "draft_*": {replies: ["first", "second"], latency_ms: 50}
      "flaky": {errors: [429, 500]}
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Literal

from runner import ir
from runner.canonical import canonical_json
from runner.compiler.schema import schema_diagnostics
from runner.compiler.source import Document, pointer_join
from runner.compiler.yaml_loader import load_yaml
from runner.errors import CompileError, ConfigError, Diagnostic
from runner.tree import walk
from runner.userfiles import UnreadableFile, read_user_text

SCRIPT_SCHEMA = "mock-script.schema.json"
"""The schema every mock script is checked against."""

ScriptedError = int | Literal["timeout"]
"""How a scripted call fails: an HTTP status, or ``timeout``."""


_INDEX = re.compile(r"\[(\d+)\]")
"""A copy index in a node id or a pattern: ``[3]``."""


def _literal(pattern: str) -> str:
    """``pattern`` with each copy index matching itself rather than one digit."""
    return _INDEX.sub(r"[[]\1]", pattern)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptEntry:
    """What the mock does for the node ids one glob matches."""

    pattern: str
    """The node-id glob, as written in the script."""
    replies: tuple[str, ...] = ()
    """Reply texts, one per call after the errors, the last repeating; empty: the derived reply."""
    errors: tuple[ScriptedError, ...] = ()
    """How the first calls fail, one per call."""
    latency_ms: float | None = None
    """Delay of each call; ``None``: the script's default."""
    where: str = dataclasses.field(default="", compare=False)
    """Where the entry is written (``file:line``), for messages; not what it does."""

    def matches(self, node_id: str) -> bool:
        """Whether this entry is for ``node_id``."""
        # `[` starts a character class in fnmatch, so a copy index written in a pattern, as in
        # `review_one[3]` or `best[0]/judge*`, would not match itself: it matches as written
        # too, as well as a class.
        return (
            node_id == self.pattern
            or fnmatch.fnmatchcase(node_id, self.pattern)
            or ("[" in self.pattern and fnmatch.fnmatchcase(node_id, _literal(self.pattern)))
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MockScript:
    """A whole mock script."""

    path: str | None = None
    """The file it came from; ``None`` for one built in code."""
    digest: str = ""
    """SHA-256 of the file's text."""
    latency_ms: float = 0.0
    """Delay of each call no entry sets one for."""
    entries: tuple[ScriptEntry, ...] = ()
    """Entries in file order; the first that matches a node id is its entry."""

    def entry(self, node_id: str) -> ScriptEntry | None:
        """The entry for ``node_id``, if any."""
        return next((entry for entry in self.entries if entry.matches(node_id)), None)


class ScriptError(ConfigError):
    """A mock script that does not load, with its problems as diagnostics (file:line:col)."""

    def __init__(self, problems: list[Diagnostic]) -> None:
        super().__init__(_first(problems))
        self.diagnostics = tuple(problems)


def load_script(path: str) -> MockScript:
    """Read and check a mock script; a bad one raises ConfigError with file:line:col."""
    try:
        text = read_user_text(path)
    except UnreadableFile as exc:
        where = f" (line {exc.line}, column {exc.col})" if exc.line is not None else ""
        raise ConfigError(f"cannot read the mock script {path}: it {exc.reason}{where}") from exc
    try:
        document = load_yaml(path, text)
    except CompileError as exc:
        raise ScriptError(_for_scripts(exc.diagnostics)) from exc
    problems = schema_diagnostics(document, SCRIPT_SCHEMA) or _clashes(document)
    if problems:
        raise ScriptError(problems)
    data: dict[str, Any] = document.data
    return MockScript(
        path=path,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        latency_ms=float(data.get("defaults", {}).get("latency_ms", 0)),
        entries=tuple(
            _entry(pattern, spec, _where(document, pattern))
            for pattern, spec in data.get("nodes", {}).items()
        ),
    )


def _where(document: Document, pattern: str) -> str:
    """``file:line`` of the entry for ``pattern``."""
    found = document.diagnostic(pointer_join("/nodes", pattern), "", rule="schema")
    return found.file if found.line is None else f"{found.file}:{found.line}"


def _entry(pattern: str, spec: dict[str, Any], where: str = "") -> ScriptEntry:
    replies: tuple[str, ...]
    if "score" in spec:
        replies = (canonical_json(spec["score"]),)
    else:
        given = [spec["reply"]] if "reply" in spec else spec.get("replies", [])
        replies = tuple(item if isinstance(item, str) else canonical_json(item) for item in given)
    latency = spec.get("latency_ms")
    return ScriptEntry(
        pattern=pattern,
        replies=replies,
        errors=tuple(e if e == "timeout" else int(e) for e in spec.get("errors", [])),
        latency_ms=None if latency is None else float(latency),
        where=where,
    )


def call_ids(workflow: ir.Workflow) -> list[str]:
    """The ids the calls of ``workflow``'s nodes carry, each copy index written as 0:
    ``draft``, ``review_one[0]``, ``fix[0][0]``, ``best/judge[0]``."""
    found = []
    for visit in walk(workflow.steps):
        # A copy gets an index per enclosing expand and per count-based tournament or
        # pareto whose body it is in (explicit candidates are not copies).
        below, copies = visit, 0
        for above in visit.ancestors():
            if above.node.kind == "expand" or (
                above.node.kind in ("tournament", "pareto") and below.field == "body"
            ):
                copies += 1
            below = above
        node_id = ir.instance_id(visit.node.id, (0,) * copies)
        found.append(node_id)
        if isinstance(visit.node, ir.Tournament) and visit.node.judge is not None:
            found.append(f"{node_id}/judge[0]")
    return found


def unused_entries(script: MockScript, workflow: ir.Workflow) -> list[str]:
    """One line for each entry of ``script`` that no call of ``workflow`` can match: where it
    is, its pattern, and the nearest id a call carries."""
    ids = call_ids(workflow)
    lines = []
    for entry in script.entries:
        # The ids have every copy index 0: the entry for `best[3]/judge*` is used when the
        # one for `best[0]/judge*` would be.
        first = dataclasses.replace(entry, pattern=_INDEX.sub("[0]", entry.pattern))
        if any(entry.matches(node_id) or first.matches(node_id) for node_id in ids):
            continue
        near = difflib.get_close_matches(entry.pattern, ids, n=1, cutoff=0.0)
        nearest = f" (nearest: {near[0]})" if near else ""
        where = entry.where or script.path or "the mock script"
        lines.append(
            f"{where}: the mock script entry {entry.pattern!r} matches no node of the workflow "
            f"{workflow.name!r}{nearest}, so no call uses it"
        )
    return lines


def _clashes(document: Document) -> list[Diagnostic]:
    """Entries that give more than one of reply, replies and score."""
    found = []
    for pattern, spec in document.data.get("nodes", {}).items():
        given = [key for key in ("reply", "replies", "score") if key in spec]
        if len(given) > 1:
            pointer = pointer_join(pointer_join("/nodes", pattern), given[1])
            found.append(
                document.diagnostic(
                    pointer,
                    f"the entry for {pattern!r} gives both {given[0]} and {given[1]}",
                    rule="schema",
                    hint="Keep one: reply (every call), replies (one per call) or score.",
                )
            )
    return found


def _for_scripts(diagnostics: tuple[Diagnostic, ...]) -> list[Diagnostic]:
    # The YAML loader's hint for an empty file speaks of workflows.
    hint = "A mock script maps node-id globs to replies under `nodes:`."
    return [
        dataclasses.replace(d, hint=hint) if d.message == "the file is empty" else d
        for d in diagnostics
    ]


def _first(problems: list[Diagnostic]) -> str:
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0].render() + more
