"""Lessons, pure: their shape (``schemas/lesson.schema.json``), reading one from JSON data with
a clear error, and the strict shape a teacher's reply must have."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from runner.compiler.schema import load_schema
from runner.compiler.source import pointer_join
from runner.errors import ConfigError

LESSON_SCHEMA = "lesson.schema.json"

Kind = Literal["note", "prompt_patch", "example", "parameter", "test"]
KINDS: tuple[Kind, ...] = ("note", "prompt_patch", "example", "parameter", "test")
"""Every lesson kind, in the order the schema lists them."""

TARGET_FORMS: dict[str, str] = {
    "note": "role:<role name> or node:<leaf id>",
    "prompt_patch": "node:<leaf id> or node:<tournament id> (its judge's prompt)",
    "example": "role:<role name> or node:<leaf id>",
    "parameter": "node:<leaf id> (temperature, max_tokens) or node:<tournament or pareto id> "
    "(count)",
    "test": "workflow",
}
"""What the target of each kind names, as the teacher's brief and error messages say it."""

MAX_LESSONS = 10
"""Lessons one teacher reply may propose."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Note:
    """An extra system message."""

    text: str
    """The message, given to the model as written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptPatch:
    """Text added to a prompt, or put in place of a piece of it."""

    op: Literal["append", "prepend", "replace"]
    """After the prompt, before it, or in place of ``find``."""
    text: str
    """The text, given to the model as written."""
    find: str | None = None
    """The piece of the prompt's template replaced (``replace`` only)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Example:
    """A few-shot exchange."""

    user: str
    """What the user says, as written."""
    assistant: str
    """What the model answers, as written."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameter:
    """A generation parameter or a contest's count."""

    name: Literal["temperature", "max_tokens", "count"]
    """Which one."""
    value: int | float
    """Its new value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtraTest:
    """An assertion added to the workflow's tests."""

    name: str
    """The test's name, new in the workflow."""
    expect: str
    """Expression that must hold after the run."""
    description: str | None = None
    """What it checks."""


Content = Note | PromptPatch | Example | Parameter | ExtraTest

_CONTENT_TYPES: dict[str, type[Content]] = {
    "note": Note,
    "prompt_patch": PromptPatch,
    "example": Example,
    "parameter": Parameter,
    "test": ExtraTest,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """A trace event a lesson rests on."""

    run: str
    """The run's id."""
    node: str
    """The node's path in the run."""
    event: str | int | None = None
    """The event's kind, or its index in the run."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Lesson:
    """One proposed change to a workflow, with why and on what evidence."""

    id: str
    """Its name, also its file name on the overlay branch."""
    kind: Kind
    """What it changes."""
    target: str
    """``role:<name>``, ``node:<id>`` or ``workflow``."""
    content: Content
    """The change, its type by ``kind``."""
    rationale: str
    """Why it helps."""
    evidence: tuple[Evidence, ...]
    """The trace events it rests on."""

    @property
    def target_kind(self) -> str:
        """``role``, ``node`` or ``workflow``."""
        return self.target.partition(":")[0]

    @property
    def target_name(self) -> str:
        """The role name or node id the target names (empty for ``workflow``)."""
        return self.target.partition(":")[2]

    def to_json(self) -> dict[str, Any]:
        """The lesson as the schema's JSON object."""
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "content": _without_none(self.content),
            "rationale": self.rationale,
            "evidence": [_without_none(e) for e in self.evidence],
        }


def _without_none(record: Any) -> dict[str, Any]:
    return {
        name: getattr(record, name)
        for name in record.__dataclass_fields__
        if getattr(record, name) is not None
    }


def lesson_schema() -> dict[str, Any]:
    """The lesson JSON Schema."""
    return load_schema(LESSON_SCHEMA)


def _teacher_reply_schema() -> dict[str, Any]:
    lesson = copy.deepcopy(lesson_schema())
    defs = lesson.pop("$defs")
    for key in ("$schema", "$id", "title"):
        lesson.pop(key, None)
    return {
        "type": "object",
        "description": "A teacher's reply: the lessons it proposes.",
        "properties": {
            "lessons": {
                "type": "array",
                "maxItems": MAX_LESSONS,
                "items": {"$ref": "#/$defs/lesson"},
                "description": "The proposed lessons.",
            }
        },
        "required": ["lessons"],
        "additionalProperties": False,
        "$defs": {**defs, "lesson": lesson},
    }


TEACHER_REPLY_SCHEMA: dict[str, Any] = _teacher_reply_schema()
"""The shape of a teacher's reply, ``{"lessons": [lesson, ...]}``, built from the lesson
schema (its ``$defs`` kept, so its references resolve)."""


@functools.cache
def _validator(kind: str | None) -> Draft202012Validator:
    schema = lesson_schema()
    if kind is None:
        return Draft202012Validator(schema)
    return Draft202012Validator({"$ref": f"#/$defs/{kind}", "$defs": schema["$defs"]})


def problem(data: Any) -> str | None:
    """Why ``data`` is not a lesson, as the middle of a sentence, or ``None`` when it is one."""
    if not isinstance(data, dict):
        return (
            "a lesson is a JSON object with id, kind, target, content, rationale and "
            f"evidence, not {_type(data)}"
        )
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        given = "has no kind" if "kind" not in data else f"has the kind {kind!r}"
        return f"the lesson {_name(data)}{given}; give one of {', '.join(KINDS)}"
    errors = list(_errors(_validator(kind), data, ""))
    if not errors:
        return None
    pointer, error = min(errors, key=lambda found: (-len(found[0]), found[0]))
    return _explained(data, kind, pointer, error)


def parse_lesson(data: Any, where: str) -> Lesson:
    """The lesson ``data`` holds; ConfigError saying what does not fit, where, and how to fix it."""
    found = problem(data)
    if found is not None:
        raise ConfigError(f"{where}: {found}")
    content = dict(data["content"])
    if data["kind"] == "parameter" and content["name"] != "temperature":
        content["value"] = int(content["value"])  # 5.0 is an integer to JSON Schema
    return Lesson(
        id=data["id"],
        kind=data["kind"],
        target=data["target"],
        content=_CONTENT_TYPES[data["kind"]](**content),
        rationale=data["rationale"],
        evidence=tuple(Evidence(**item) for item in data["evidence"]),
    )


def _errors(
    validator: Draft202012Validator, value: Any, at: str
) -> Iterator[tuple[str, ValidationError]]:
    """The validator's errors with their pointers, a ``oneOf`` of alternatives told apart by a
    constant (``op``, ``name``) replaced by the errors of the alternative the value picks."""
    for error in validator.iter_errors(value):
        pointer = at + "".join(pointer_join("", part) for part in error.absolute_path)
        if error.validator == "oneOf" and isinstance(error.instance, dict):
            chosen = _chosen(error.schema["oneOf"], error.instance)
            if chosen is not None:
                schema = {**chosen, "$defs": lesson_schema()["$defs"]}
                yield from _errors(Draft202012Validator(schema), error.instance, pointer)
                continue
        yield pointer, error


def _chosen(branches: list[Any], value: dict[str, Any]) -> dict[str, Any] | None:
    """The alternative whose constant fields ``value`` matches."""
    for branch in branches:
        fixed = {
            name: spec.get("enum", [spec.get("const")])
            for name, spec in branch.get("properties", {}).items()
            if "const" in spec or "enum" in spec
        }
        if fixed and all(value.get(name) in allowed for name, allowed in fixed.items()):
            return dict(branch)
    return None


def _explained(data: dict[str, Any], kind: str, pointer: str, error: ValidationError) -> str:
    name = _name(data)
    expected: Any = error.validator_value
    schema: Any = error.schema
    at = f" at {pointer}" if pointer else ""
    if error.validator == "required":
        given: Any = error.instance
        missing = next(n for n in expected if n not in given)
        return f"the {kind} lesson {name}has no {missing!r}{at}; add it"
    if error.validator == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        extra = sorted(set(_given_fields(error)) - set(known))
        return (
            f"the {kind} lesson {name}has the unknown field {extra[0]!r}{at}; remove it "
            f"(the fields are {', '.join(known)})"
        )
    if pointer == "/id":
        return (
            f"the lesson id {data['id']!r} is not a lesson id; use 1 to 64 lowercase letters, "
            "digits, '_', '.' and '-', starting with a letter or digit"
        )
    if pointer == "/target":
        return (
            f"the target {data['target']!r} of the {kind} lesson {name}does not name what a "
            f"{kind} changes; write {TARGET_FORMS[kind]}"
        )
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        fields = sorted({p for b in expected for p in b.get("properties", {})})
        choices = [
            field + " " + " or ".join(repr(v) for b in expected for v in _fixed(b, field))
            for field in fields
            if any(_fixed(b, field) for b in expected)
        ]
        return (
            f"the {kind} lesson {name}has content{at} that fits none of its forms; give "
            + ", ".join(choices)
        )
    if pointer.startswith("/evidence/") and pointer.endswith("/event"):
        return (
            f"the {kind} lesson {name}has the evidence event {error.instance!r}{at}; give the "
            "event's kind (a string) or its index in the run (0 or more)"
        )
    if error.validator == "minItems" and pointer == "/evidence":
        return f"the {kind} lesson {name}has no evidence; add at least one {{run, node}} reference"
    return f"the {kind} lesson {name}does not fit the lesson schema{at}: {error.message}"


def _given_fields(error: ValidationError) -> list[str]:
    """The field names of the object an error is about."""
    instance: Any = error.instance
    return list(instance) if isinstance(instance, dict) else []


def _fixed(branch: dict[str, Any], field: str) -> list[Any]:
    spec = branch.get("properties", {}).get(field, {})
    return list(spec.get("enum", [spec["const"]] if "const" in spec else []))


def _name(data: dict[str, Any]) -> str:
    """``'fix-json' `` when the lesson's id is a string, to name it in a message."""
    ident = data.get("id")
    return f"{ident!r} " if isinstance(ident, str) and ident else ""


def _type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
