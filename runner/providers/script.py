"""Mock scripts: what the mock provider answers for which node ids and roles, so tests and
demos can stage any scenario (replies, sequences, judge scores, failures, latencies, and answers
chosen by what the request contains, as a learning loop needs).

    defaults: {latency_ms: 0}
    nodes:
      "review_one*": {reply: {ok: true}}
      "draft_*": {replies: ["first", "second"], latency_ms: 50}
      "flaky": {errors: [429, 500]}
      "locate":
        cases:
          - when: {prompt_contains: "Answer with the file name only"}
            reply: runner/cache.py
          - reply: "It is built in runner/cache.py."
    roles:
      teacher: {reply: {lessons: []}}
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
from runner.providers.base import ModelRequest
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
class When:
    """What a request must contain for a case to answer it; every field given must hold."""

    prompt_contains: tuple[str, ...] = ()
    """Texts each found in some message of the request, whatever its role."""
    system_contains: tuple[str, ...] = ()
    """Texts each found in some system message."""
    user_contains: tuple[str, ...] = ()
    """Texts each found in some user message."""
    role: str | None = None
    """The role making the call; ``None``: any."""

    def holds(self, request: ModelRequest) -> bool:
        """Whether ``request`` is one this case answers."""
        if self.role is not None and request.role != self.role:
            return False
        messages = request.messages
        return (
            _found(self.prompt_contains, [m.content for m in messages])
            and _found(self.system_contains, [m.content for m in messages if m.role == "system"])
            and _found(self.user_contains, [m.content for m in messages if m.role == "user"])
        )


def _found(texts: tuple[str, ...], contents: list[str]) -> bool:
    return all(any(text in content for content in contents) for text in texts)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptCase:
    """One answer of an entry's cases: the calls whose request its ``when`` holds for."""

    when: When | None = None
    """What the request must contain; ``None``: every call (the last case only)."""
    replies: tuple[str, ...] = ()
    """Reply texts, one per call after the errors, the last repeating; empty: the derived reply."""
    errors: tuple[ScriptedError, ...] = ()
    """How the first calls this case answers fail, one per call."""
    latency_ms: float | None = None
    """Delay of each call; ``None``: the entry's, else the script's default."""
    where: str = dataclasses.field(default="", compare=False)
    """Where the case is written (``file:line``), for messages and the reply's record."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptEntry:
    """What the mock does for the node ids (or role names) one glob matches."""

    pattern: str
    """The node-id glob (the role-name glob, under ``roles``), as written in the script."""
    replies: tuple[str, ...] = ()
    """Reply texts, one per call after the errors, the last repeating; empty: the derived reply."""
    errors: tuple[ScriptedError, ...] = ()
    """How the first calls fail, one per call."""
    latency_ms: float | None = None
    """Delay of each call; ``None``: the script's default."""
    cases: tuple[ScriptCase, ...] = ()
    """Answers by what the request contains, tried in order; empty: the fields above answer
    every call."""
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

    def case(self, request: ModelRequest) -> int | None:
        """The index of the first case that answers ``request``; ``None``: no case does."""
        return next(
            (
                index
                for index, case in enumerate(self.cases)
                if case.when is None or case.when.holds(request)
            ),
            None,
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
    roles: tuple[ScriptEntry, ...] = ()
    """Entries by role name, in file order, for the calls no node entry matches."""

    def entry(self, node_id: str, role: str | None = None) -> ScriptEntry | None:
        """The entry for a call of ``node_id`` made by ``role``, if any: the first node entry
        that matches the id, else the first role entry that matches the role."""
        found = next((entry for entry in self.entries if entry.matches(node_id)), None)
        if found is None and role is not None:
            found = next((entry for entry in self.roles if entry.matches(role)), None)
        return found


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
        entries=_entries(document, "nodes"),
        roles=_entries(document, "roles"),
    )


def _entries(document: Document, section: str) -> tuple[ScriptEntry, ...]:
    """The entries under ``section`` (``nodes`` or ``roles``), in file order."""
    found = []
    for pattern, spec in document.data.get(section, {}).items():
        pointer = pointer_join(f"/{section}", pattern)
        cases = tuple(
            _case(case, _where(document, pointer_join(pointer_join(pointer, "cases"), index)))
            for index, case in enumerate(spec.get("cases", ()))
        )
        found.append(_entry(pattern, spec, _where(document, pointer), cases))
    return tuple(found)


def _where(document: Document, pointer: str) -> str:
    """``file:line`` of what ``pointer`` names."""
    found = document.diagnostic(pointer, "", rule="schema")
    return found.file if found.line is None else f"{found.file}:{found.line}"


def _entry(
    pattern: str, spec: dict[str, Any], where: str = "", cases: tuple[ScriptCase, ...] = ()
) -> ScriptEntry:
    return ScriptEntry(
        pattern=pattern,
        replies=_replies(spec),
        errors=_errors(spec),
        latency_ms=_latency(spec),
        cases=cases,
        where=where,
    )


def _case(spec: dict[str, Any], where: str) -> ScriptCase:
    when = spec.get("when")
    return ScriptCase(
        when=None
        if when is None
        else When(
            prompt_contains=_texts(when.get("prompt_contains")),
            system_contains=_texts(when.get("system_contains")),
            user_contains=_texts(when.get("user_contains")),
            role=when.get("role"),
        ),
        replies=_replies(spec),
        errors=_errors(spec),
        latency_ms=_latency(spec),
        where=where,
    )


def _texts(given: str | list[str] | None) -> tuple[str, ...]:
    return () if given is None else (given,) if isinstance(given, str) else tuple(given)


def _replies(spec: dict[str, Any]) -> tuple[str, ...]:
    if "score" in spec:
        return (canonical_json(spec["score"]),)
    given = [spec["reply"]] if "reply" in spec else spec.get("replies", [])
    return tuple(item if isinstance(item, str) else canonical_json(item) for item in given)


def _errors(spec: dict[str, Any]) -> tuple[ScriptedError, ...]:
    return tuple(e if e == "timeout" else int(e) for e in spec.get("errors", []))


def _latency(spec: dict[str, Any]) -> float | None:
    latency = spec.get("latency_ms")
    return None if latency is None else float(latency)


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


_ANSWERS = ("reply", "replies", "score")
"""The fields that give replies; an entry or a case gives at most one."""


def _clashes(document: Document) -> list[Diagnostic]:
    """What the schema cannot say: an entry or a case giving more than one of reply, replies
    and score, an entry giving cases beside its own answer, an empty ``when``, and a case
    without ``when`` before the last."""
    found = []
    for section in ("nodes", "roles"):
        owner = "" if section == "nodes" else "the role "
        for pattern, spec in document.data.get(section, {}).items():
            pointer = pointer_join(f"/{section}", pattern)
            name = f"the entry for {owner}{pattern!r}"
            found += _answer_clashes(document, pointer, spec, name)
            found += _case_clashes(document, pointer, spec, name)
    return sorted(found, key=lambda d: (d.line or 0, d.col or 0))


def _case_clashes(
    document: Document, pointer: str, spec: dict[str, Any], name: str
) -> list[Diagnostic]:
    cases: list[dict[str, Any]] = spec.get("cases", [])
    beside = [key for key in (*_ANSWERS, "errors") if key in spec]
    found = []
    if cases and beside:
        found.append(
            document.diagnostic(
                pointer_join(pointer, beside[0]),
                f"{name} gives both cases and {beside[0]}",
                rule="schema",
                hint=f"Move {beside[0]} into a case: a last case without `when` answers every "
                "call the other cases do not take.",
            )
        )
    for index, case in enumerate(cases):
        at = pointer_join(pointer_join(pointer, "cases"), index)
        what = f"case {index + 1} of {name}"
        found += _answer_clashes(document, at, case, what)
        if case.get("when") == {}:
            found.append(
                document.diagnostic(
                    pointer_join(at, "when"),
                    f"{what} has an empty `when`",
                    rule="schema",
                    hint="Give `when` a field (prompt_contains, system_contains, user_contains "
                    "or role), or leave it out of the last case to answer every other call.",
                )
            )
        if "when" not in case and index < len(cases) - 1:
            found.append(
                document.diagnostic(
                    at,
                    f"{what} has no `when`, so it answers every call and the cases after it are "
                    "never tried",
                    rule="schema",
                    hint="Move it to the end of `cases` (only the last case may leave out "
                    "`when`), or give it a `when`.",
                )
            )
    return found


def _answer_clashes(
    document: Document, pointer: str, spec: dict[str, Any], name: str
) -> list[Diagnostic]:
    given = [key for key in _ANSWERS if key in spec]
    if len(given) < 2:
        return []
    return [
        document.diagnostic(
            pointer_join(pointer, given[1]),
            f"{name} gives both {given[0]} and {given[1]}",
            rule="schema",
            hint="Keep one: reply (every call), replies (one per call) or score.",
        )
    ]


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
