"""Lessons applied to a compiled workflow, pure: each kind a transformation of the IR.

The text a lesson adds reaches the model as written: a prompt is a Jinja template, so text
that template syntax could read (``{{``, ``{%``, ``{% endraw %}``, a carriage return, a
trailing newline Jinja would drop) goes in as one string literal, ``{{ "..." }}``, whose
escapes spell every character. Lessons are applied in the order of their ids, each to the
workflow the ones before it made, so one set gives one workflow whatever order it came in.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterable
from collections.abc import Sequence as Seq
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError, nodes

from runner import ir
from runner.canonical import canonical_json, content_hash
from runner.compiler import references
from runner.compiler.build import to_document
from runner.compiler.expression_fields import TextField
from runner.compiler.semantic import Checker
from runner.compiler.source import Document
from runner.expressions import ExpressionError, analyze_expression, environment
from runner.learning.lessons import (
    Example,
    ExtraTest,
    Lesson,
    Note,
    Parameter,
    PromptPatch,
    problem,
)
from runner.tree import CHILD_FIELDS, walk

SEPARATOR = "\n\n"
"""Between a prompt and the text a ``prompt_patch`` appends or prepends."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """What applying a set of lessons made of a workflow."""

    workflow: ir.Workflow
    """The transformed workflow (the one given, when nothing applied)."""
    applied: tuple[str, ...]
    """Ids of the lessons applied, in the order they were."""
    rejected: tuple[tuple[str, str], ...]
    """(id, reason) of each lesson that was not."""


class _Rejected(Exception):
    """Why a lesson cannot be applied to the workflow."""


def check(workflow: ir.Workflow, lesson: Lesson) -> str | None:
    """``None`` when ``lesson`` applies to ``workflow``; else why it does not."""
    try:
        _transformed(workflow, lesson)
    except _Rejected as exc:
        return str(exc)
    return None


def apply(workflow: ir.Workflow, lessons: Seq[Lesson]) -> Applied:
    """``workflow`` with every lesson that applies applied, in the order of their ids."""
    current = workflow
    applied: list[str] = []
    rejected: list[tuple[str, str]] = []
    seen: set[str] = set()
    for lesson in sorted(lessons, key=lambda one: (one.id, canonical_json(one.to_json()))):
        if lesson.id in seen:
            rejected.append((lesson.id, f"another lesson has the id {lesson.id!r}"))
            continue
        seen.add(lesson.id)
        try:
            current = _transformed(current, lesson)
        except _Rejected as exc:
            rejected.append((lesson.id, str(exc)))
            continue
        applied.append(lesson.id)
    if applied:
        current = dataclasses.replace(current, hash=content_hash(to_document(current)))
    return Applied(workflow=current, applied=tuple(applied), rejected=tuple(rejected))


def applied_digest(lessons: Iterable[Lesson]) -> str:
    """SHA-256 of the canonical JSON of ``lessons`` (sorted by id), for the run record."""
    return content_hash([one.to_json() for one in sorted(lessons, key=lambda one: one.id)])


def literal(text: str) -> str:
    """A template that renders to ``text`` exactly, whatever it holds."""
    if "{" not in text and "\r" not in text and not text.endswith("\n"):
        return text
    return _string(text)


def _string(text: str) -> str:
    """``text`` as one Jinja string literal printed: ``{{ "..." }}``."""
    out = []
    for char in text:
        code = ord(char)
        if (char.isalnum() and code < 128) or char in _PLAIN or (code > 127 and char.isprintable()):
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '{{ "' + "".join(out) + '" }}'


# Jinja unescapes a string literal as Python's "unicode-escape" does; characters of its own
# syntax ({ } % #) are spelled as escapes too, so that the literal has no delimiter in it.
_PLAIN = frozenset(" .,:;!?-_'()[]/=+*&^$@<>|~`")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _transformed(workflow: ir.Workflow, lesson: Lesson) -> ir.Workflow:
    found = problem(lesson.to_json())
    if found is not None:
        raise _Rejected(found)
    content = lesson.content
    match content:
        case Note():
            return _on_leaves(workflow, lesson, "a note", lambda leaf: _noted(leaf, content))
        case Example():
            return _on_leaves(workflow, lesson, "an example", lambda leaf: _taught(leaf, content))
        case PromptPatch():
            return _patched(workflow, lesson.target_name, content)
        case Parameter():
            return _parameter(workflow, lesson.target_name, content)
        case ExtraTest():
            return _tested(workflow, content)
    raise _Rejected(f"a {lesson.kind} lesson cannot hold {type(content).__name__} content")


# -- note, example: every leaf of a role, or one leaf -----------------------------------------


def _on_leaves(
    workflow: ir.Workflow, lesson: Lesson, what: str, change: Callable[[ir.Leaf], ir.Leaf]
) -> ir.Workflow:
    name = lesson.target_name
    if lesson.target_kind == "role":
        roles = [role for role, _ in workflow.roles or ()]
        if name not in roles:
            raise _Rejected(f"role {name!r} is not declared{_nearest(name, roles)}")
        if not any(v.node.kind == "leaf" and v.node.role == name for v in walk(workflow.steps)):
            raise _Rejected(f"role {name!r} plays no leaf; {what} needs a leaf to go to")

        def chosen(node: ir.Node) -> bool:
            return node.kind == "leaf" and node.role == name

    else:
        node = _node(workflow, name)
        if node.kind != "leaf":
            raise _Rejected(f"node {name!r} is a {node.kind}; {what} needs a leaf")

        def chosen(node: ir.Node) -> bool:
            return node.id == name

    def each(node: ir.Node) -> ir.Node:
        return change(node) if isinstance(node, ir.Leaf) and chosen(node) else node

    return dataclasses.replace(workflow, steps=_rebuilt(workflow.steps, each))


def _chat(leaf: ir.Leaf) -> list[ir.Message]:
    if leaf.messages is not None:
        return list(leaf.messages)
    return [ir.Message(role="user", content=leaf.prompt or "")]


def _noted(leaf: ir.Leaf, note: Note) -> ir.Leaf:
    """The leaf with a system message after the system messages it has."""
    chat = _chat(leaf)
    at = next((i for i, m in enumerate(chat) if m.role != "system"), len(chat))
    chat.insert(at, ir.Message(role="system", content=literal(note.text)))
    return dataclasses.replace(leaf, prompt=None, messages=tuple(chat))


def _taught(leaf: ir.Leaf, example: Example) -> ir.Leaf:
    """The leaf with a user/assistant exchange before its final user message."""
    chat = _chat(leaf)
    last = _last_user(chat)
    if last is None:
        raise _Rejected(f"leaf {leaf.id!r} has no user message to put an example before")
    chat[last:last] = [
        ir.Message(role="user", content=literal(example.user)),
        ir.Message(role="assistant", content=literal(example.assistant)),
    ]
    return dataclasses.replace(leaf, prompt=None, messages=tuple(chat))


def _last_user(chat: list[ir.Message]) -> int | None:
    return next((i for i in reversed(range(len(chat))) if chat[i].role == "user"), None)


# -- prompt_patch: a leaf's prompt (or last user message), or a tournament's judge ------------


def _patched(workflow: ir.Workflow, name: str, patch: PromptPatch) -> ir.Workflow:
    node = _node(workflow, name)
    if isinstance(node, ir.Leaf):
        if node.messages is None:
            changed: ir.Node = dataclasses.replace(
                node, prompt=_patch(node.prompt or "", patch, name)
            )
        else:
            chat = list(node.messages)
            last = _last_user(chat)
            if last is None:
                raise _Rejected(f"leaf {name!r} has no user message to patch")
            content = _patch(chat[last].content, patch, name)
            chat[last] = dataclasses.replace(chat[last], content=content)
            changed = dataclasses.replace(node, messages=tuple(chat))
    elif isinstance(node, ir.Tournament) and node.judge is not None:
        judge = dataclasses.replace(node.judge, prompt=_patch(node.judge.prompt, patch, name))
        changed = dataclasses.replace(node, judge=judge)
    elif isinstance(node, ir.Tournament):
        raise _Rejected(
            f"tournament {name!r} scores with an expression, not a judge; a prompt_patch needs "
            "a leaf or a judge's prompt"
        )
    else:
        raise _Rejected(
            f"node {name!r} is a {node.kind}; a prompt_patch needs a leaf or a judge's prompt"
        )
    return _replaced(workflow, name, changed)


def _patch(template: str, patch: PromptPatch, name: str) -> str:
    """``template`` patched; what it renders to is what it rendered to, with the text added."""
    if patch.op == "replace":
        assert patch.find is not None  # the schema requires it
        times = template.count(patch.find)
        if times == 0:
            raise _Rejected(f"replace finds no {patch.find!r} in the prompt of {name!r}")
        added = _string(patch.text)
        out = template.replace(patch.find, added)
    else:
        times = 1
        text = SEPARATOR + patch.text if patch.op == "append" else patch.text + SEPARATOR
        added = _string(text)
        # Jinja drops one trailing newline of a template; once text follows, it would not.
        out = _without_final_newline(template) + added if patch.op == "append" else added + template
    # A replace may have cut into template syntax (a tag, a comment, a raw block): the text
    # counts as added only where it is printed as it is.
    value = _string_value(added)
    if _printed(out, value) != _printed(template, value) + times:
        if patch.op != "replace":  # a template that compiles takes text after or before it
            raise _Rejected(f"the prompt of {name!r} cannot be patched: it does not compile")
        raise _Rejected(
            f"replace finds {patch.find!r} inside the template syntax of the prompt of "
            f"{name!r}; give a piece of its plain text that is nowhere else"
        )
    return out


def _without_final_newline(template: str) -> str:
    for newline in ("\r\n", "\n", "\r"):
        if template.endswith(newline):
            return template[: -len(newline)]
    return template


def _string_value(added: str) -> str:
    tree = environment().parse(added)
    [output] = tree.body
    assert isinstance(output, nodes.Output)
    [const] = output.nodes
    assert isinstance(const, nodes.Const)
    value: str = const.value
    return value


def _printed(template: str, value: str) -> int:
    """How often ``template`` prints the string constant ``value`` on its own; -1 when it
    does not compile."""
    try:
        tree = environment().parse(template)
    except TemplateSyntaxError:
        return -1
    return sum(
        1
        for output in tree.find_all(nodes.Output)
        for part in output.nodes
        if isinstance(part, nodes.Const) and part.value == value
    )


# -- parameter: a leaf's temperature or max_tokens, a contest's count ---------------------------


def _parameter(workflow: ir.Workflow, name: str, parameter: Parameter) -> ir.Workflow:
    node = _node(workflow, name)
    if parameter.name == "count":
        if not isinstance(node, ir.Tournament | ir.Pareto):
            raise _Rejected("parameter count applies to a tournament or pareto node")
        if node.count is None:
            raise _Rejected(
                f"{node.kind} {name!r} has explicit candidates; parameter count applies to one "
                "with count and body"
            )
        counted = _replaced(workflow, name, dataclasses.replace(node, count=int(parameter.value)))
        _bounds_kept(workflow, counted, f"count {parameter.value} for {node.kind} {name!r}")
        return counted
    if not isinstance(node, ir.Leaf):
        raise _Rejected(f"parameter {parameter.name} applies to a leaf")
    changed: ir.Leaf
    if parameter.name == "max_tokens":
        changed = dataclasses.replace(node, max_tokens=int(parameter.value))
    else:
        changed = dataclasses.replace(node, temperature=parameter.value)
    return _replaced(workflow, name, changed)


# -- test: an assertion added to the workflow's tests ------------------------------------------


def _tested(workflow: ir.Workflow, test: ExtraTest) -> ir.Workflow:
    try:
        analyze_expression(test.expect)
    except ExpressionError as exc:
        raise _Rejected(f"test expression does not compile: {exc.message}") from exc
    if any(t.name == test.name for t in workflow.tests or ()):
        raise _Rejected(f"a test named {test.name!r} already exists")
    added = ir.Test(name=test.name, expect=test.expect, description=test.description)
    _readable(workflow, added, f"test {test.name!r}")
    return dataclasses.replace(workflow, tests=(*(workflow.tests or ()), added))


# -- the tree ------------------------------------------------------------------------------------


def _node(workflow: ir.Workflow, name: str) -> ir.Node:
    for visit in walk(workflow.steps):
        if visit.node.id == name:
            return visit.node
    raise _Rejected(f"node {name!r} does not exist")


def _replaced(workflow: ir.Workflow, name: str, changed: ir.Node) -> ir.Workflow:
    def each(node: ir.Node) -> ir.Node:
        return changed if node.id == name else node

    return dataclasses.replace(workflow, steps=_rebuilt(workflow.steps, each))


def _rebuilt(node: ir.Node, change: Callable[[ir.Node], ir.Node]) -> ir.Node:
    """``node`` with ``change`` made to it and every node under it; what it leaves alone is
    shared with the input, which is never modified."""
    updates: dict[str, object] = {}
    for field in CHILD_FIELDS.get(node.kind, ()):
        value = getattr(node, field)
        if isinstance(value, tuple):
            children = tuple(_rebuilt(child, change) for child in value)
            if any(new is not old for new, old in zip(children, value, strict=True)):
                updates[field] = children
        elif value is not None:
            child = _rebuilt(value, change)
            if child is not value:
                updates[field] = child
    return change(dataclasses.replace(node, **updates) if updates else node)  # type: ignore[arg-type]


def _bounds_kept(before: ir.Workflow, after: ir.Workflow, what: str) -> None:
    """Reject a count the compiler's bounds checks (budget.leaves, min_successes) refuse."""

    def found(workflow: ir.Workflow) -> set[tuple[str, str]]:
        checker = _checker(workflow)
        checker.check_min_successes()
        checker.check_shape()
        return {(d.message, d.hint or "") for d in checker.found}

    _refuse_new(found(after) - found(before), what)


def _readable(workflow: ir.Workflow, test: ir.Test, what: str) -> None:
    """Reject a test whose expression reads what a workflow's test may not."""
    checker = _checker(workflow)
    checker.check_ids()
    del checker.found[:]  # the workflow's own problems, if it has any, are not the test's
    source = TextField(field="expect", text=test.expect, expression=True)
    after_run = references.availability(workflow.steps).after_run
    checker.check_source(None, "/tests/-/expect", source, frozenset(), after_run)
    _refuse_new({(d.message, d.hint or "") for d in checker.found}, what)


def _checker(workflow: ir.Workflow) -> Checker:
    document = Document(path=workflow.source, data={}, language="json")
    return Checker(document, workflow)


def _refuse_new(new: set[tuple[str, str]], what: str) -> None:
    if new:
        message, hint = min(new)
        raise _Rejected(
            f"{what} does not fit the workflow: {message}" + (f" ({hint})" if hint else "")
        )


def _nearest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return (
        f" (did you mean {close[0]!r}?)" if close else f" (declared: {', '.join(known) or 'none'})"
    )
