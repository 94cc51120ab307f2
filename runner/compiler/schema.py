"""Schema validation: the JSON Schema contract, with errors phrased for the people who write
workflows (what is wrong, where, and how to fix it) rather than as validator internals."""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from runner.compiler.source import Document, pointer_join
from runner.errors import Diagnostic
from runner.schemas import Check, compile_check

WORKFLOW_SCHEMA = "workflow.schema.json"
CONFIG_SCHEMA = "config.schema.json"


def schema_path(name: str = WORKFLOW_SCHEMA) -> Path:
    """Where a schema is: inside the installed package, or in the source checkout."""
    here = Path(__file__).resolve().parent.parent
    installed = here / "schemas" / name
    return installed if installed.is_file() else here.parent / "schemas" / name


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped with Branchleaf, by file name."""
    with schema_path(name).open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def workflow_schema() -> dict[str, Any]:
    """The workflow JSON Schema."""
    return load_schema(WORKFLOW_SCHEMA)


@functools.cache
def _validator(name: str = WORKFLOW_SCHEMA) -> Draft202012Validator:
    return Draft202012Validator(load_schema(name))


def workflow_validator() -> Draft202012Validator:
    """The validator of the workflow schema."""
    return _validator(WORKFLOW_SCHEMA)


@functools.cache
def _fast_check(name: str) -> Check | None:
    return compile_check(load_schema(name))


def schema_diagnostics(document: Document, schema: str = WORKFLOW_SCHEMA) -> list[Diagnostic]:
    """Every violation of ``schema`` in ``document``, in source order."""
    # The compiled check answers what the validator does (runner.schemas), in a tenth of the
    # time; the validator is asked only to explain a document that fails it.
    check = _fast_check(schema)
    if check is not None and check(document.data):
        return []
    return _diagnostics(document, _validator(schema))


def definitions_diagnostics(document: Document, schema: Mapping[str, Any]) -> list[Diagnostic]:
    """Every violation, in source order, of ``schema``: a schema built in code whose ``$ref``s
    name the workflow schema's definitions (``#/$defs/case``), for a file holding pieces of a
    workflow (a cases file)."""
    validator = Draft202012Validator({**schema, "$defs": workflow_schema()["$defs"]})
    return _diagnostics(document, validator)


def _diagnostics(document: Document, validator: Draft202012Validator) -> list[Diagnostic]:
    found: dict[tuple[str, str], Diagnostic] = {}
    for error in validator.iter_errors(document.data):
        for pointer, message, hint in _explain(error, document.data, document.language):
            key = (pointer, message)
            if key not in found:
                found[key] = document.diagnostic(pointer, message, rule="schema", hint=hint)
    return sorted(found.values(), key=_source_order)


def _source_order(diagnostic: Diagnostic) -> tuple[str, int, int, str]:
    return (diagnostic.file, diagnostic.line or 0, diagnostic.col or 0, diagnostic.pointer or "")


def _pointer(error: ValidationError) -> str:
    pointer = ""
    for token in error.absolute_path:
        pointer = pointer_join(pointer, token)
    return pointer


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _dotted(tokens: Sequence[Any]) -> str:
    """A path as a reader writes it: ``retry.attempts``, ``errors[0]``, ``nodes["ök"]``."""
    out = ""
    for token in tokens:
        if isinstance(token, int):
            out += f"[{token}]"
        elif _NAME.match(str(token)):
            out += f".{token}" if out else str(token)
        else:
            out += f"[{_show(str(token))}]"
    return out


def _show(value: Any, limit: int = 60) -> str:
    """A value as JSON, non-ASCII characters as they are, long values shortened."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class _Context:
    """Where an error is, in a reader's terms: the innermost node and the path below it."""

    below: tuple[Any, ...]
    """Path tokens from the innermost node (or the document) to the value."""
    node: str | None
    """``leaf 'review_one'``, for the innermost node on the path."""

    def subject(self) -> str:
        """The value the error is about: ``retry.attempts``, ``nodes["a"].errors[0]``."""
        return _dotted(self.below) or ("the node" if self.node else "the document")

    def suffix(self) -> str:
        """`` in leaf 'a'``, or `` at the top level`` for a field of the document itself."""
        if self.node:
            return f" in {self.node}"
        return " at the top level" if len(self.below) == 1 else ""

    def inside(self) -> str:
        """Where the fields of this object are: `` in retry of leaf 'a'``, `` in nodes["a"]``."""
        if self.below and self.node:
            return f" in {_dotted(self.below)} of {self.node}"
        if self.node:
            return f" in {self.node}"
        return f" in {_dotted(self.below)}" if self.below else " at the top level"


def _at(data: Any, path: Iterable[Any]) -> Any:
    current = data
    for token in path:
        try:
            current = current[token]
        except (KeyError, IndexError, TypeError):
            return None
    return current


def _context(data: Any, path: Sequence[Any]) -> _Context:
    node: str | None = None
    start = 0
    current = data
    for i in range(len(path) + 1):
        if isinstance(current, Mapping) and isinstance(current.get("kind"), str):
            node = f"{current['kind']} {current.get('id', '(no id)')!r}"
            start = i
        if i == len(path):
            break
        try:
            current = current[path[i]]
        except (KeyError, IndexError, TypeError):
            break
    return _Context(below=tuple(path[start:]), node=node)


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),  # before int: a bool is an int in Python
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def _json_type(value: Any) -> str:
    return next((name for cls, name in _JSON_TYPES if isinstance(value, cls)), "null")


def _misplaced(key: str, pointer: str, language: str) -> str | None:
    """The fix for a workflow field (``tests``, ``roles``...) written inside the steps."""
    if not pointer.startswith("/steps") or key not in workflow_schema().get("properties", {}):
        return None
    where = {
        "starlark": "pass it to workflow(...), beside steps",
        "json": 'move it to the top-level object, beside "steps"',
    }.get(language, "unindent it to the top level, beside 'steps'")
    return f"{key!r} belongs to the workflow, not to a node: {where}."


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _explain(
    error: ValidationError, data: Any, language: str = "yaml"
) -> list[tuple[str, str, str | None]]:
    """(pointer, message, hint) triples for one validator error."""
    pointer = _pointer(error)
    where = _context(data, list(error.absolute_path))
    owner = where.suffix()
    inside = where.inside()
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    value = error.instance
    field = str(error.absolute_path[-1]) if error.absolute_path else "document"
    subject = where.subject()
    kind = error.validator
    expected: Any = error.validator_value
    if kind == "additionalProperties" and isinstance(value, Mapping):
        known = sorted(schema.get("properties", {}))
        extra = [key for key in value if key not in schema.get("properties", {})]
        return [
            (
                pointer_join(pointer, key),
                f"unknown field {key!r}{inside}",
                _misplaced(key, pointer, language)
                or (
                    (_suggest(key, known) + f" Allowed here: {', '.join(known)}.").strip()
                    if known
                    else "Remove it."
                ),
            )
            for key in extra
        ]
    if kind == "required" and isinstance(value, Mapping):
        missing = [key for key in expected if key not in value]
        described = schema.get("properties", {})
        return [
            (
                pointer,
                f"missing required field {key!r}{inside}",
                _add_hint(key, described.get(key, {}).get("description")),
            )
            for key in missing
        ]
    if kind == "dependentRequired" and isinstance(value, Mapping):
        return [
            (pointer, f"{name!r} needs {need!r} too{inside}", f"Add {need!r} or remove {name!r}.")
            for name, needs in expected.items()
            if name in value
            for need in needs
            if need not in value
        ]
    if kind == "oneOf" and isinstance(value, Mapping):
        return [_explain_one_of(error, pointer, inside, value)]
    if kind == "type":
        want = expected
        wants = [want] if isinstance(want, str) else list(want)
        names = " or ".join(_TYPE_NAMES.get(w, w) for w in wants)
        got = _TYPE_NAMES.get(_json_type(value), "null")
        return [(pointer, f"{subject} must be {names}, not {got}{owner}", f"Write it as {names}.")]
    if kind in ("enum", "const"):
        allowed = expected if kind == "enum" else [expected]
        if field == "kind" and isinstance(value, str):
            kinds = workflow_schema()["$defs"]["node"]["properties"]["kind"]["enum"]
            return [
                (
                    pointer,
                    f"unknown node kind {value!r}",
                    (_suggest(value, kinds) + f" Kinds: {', '.join(kinds)}.").strip(),
                )
            ]
        shown = ", ".join(_show(a) for a in allowed)
        hint = _suggest(value, [str(a) for a in allowed]) if isinstance(value, str) else ""
        if field == "memo" and isinstance(value, bool):
            hint = " Quote it: memo: 'on'."
        return [
            (
                pointer,
                f"{subject} must be one of {shown}, not {_show(value)}{owner}",
                hint.strip() or f"Use one of {shown}.",
            )
        ]
    if kind == "pattern" and isinstance(_at(data, error.absolute_path), Mapping):
        # propertyNames checks each key against the pattern at the mapping's own path.
        return [
            (
                pointer_join(pointer, str(value)),
                f"the name {_show(value)} is not allowed{inside}",
                schema.get("description", f"A name matches {expected}."),
            )
        ]
    if kind == "pattern":
        what = schema.get("description", f"the pattern {expected}")
        return [(pointer, f"{_show(value)} is not valid for {subject}{owner}", what)]
    if kind == "propertyNames":
        names_schema = Draft202012Validator(expected)
        bad = (
            [key for key in value if not names_schema.is_valid(key)]
            if isinstance(value, Mapping)
            else []
        )
        what = expected.get("description") if isinstance(expected, Mapping) else None
        return [
            (
                pointer_join(pointer, key),
                f"the name {_show(key)} is not allowed{inside}",
                what or "Names are letters, digits and underscores.",
            )
            for key in bad
        ] or [(pointer, f"{error.message}{owner}", "Names are letters, digits and underscores.")]
    bounds = {
        "minimum": "at least",
        "maximum": "at most",
        "exclusiveMinimum": "greater than",
        "exclusiveMaximum": "less than",
    }
    if kind in bounds:
        return [
            (
                pointer,
                f"{subject} must be {bounds[kind]} {expected}, not {_show(value)}{owner}",
                f"Use a value {bounds[kind]} {expected}.",
            )
        ]
    if kind == "minItems":
        items = "item" if expected == 1 else "items"
        what = schema.get("description", "").split(".")[0].rstrip()
        about = f" ({what[0].lower()}{what[1:]})" if what else ""
        return [
            (
                pointer,
                f"{subject} needs at least {expected} {items}{owner}",
                f"List at least {expected} {items} in {subject}{about}.",
            )
        ]
    if kind == "minLength":
        return [(pointer, f"{subject} must not be empty{owner}", f"Give {subject} a value.")]
    if kind == "uniqueItems":
        items_seen = list(value) if isinstance(value, list) else []
        twice = next((x for i, x in enumerate(items_seen) if x in items_seen[:i]), None)
        return [
            (
                pointer,
                f"{subject} lists {_show(twice)} twice{owner}",
                f"Remove the second {_show(twice)} from {subject}.",
            )
        ]
    return [
        (
            pointer,
            f"{error.message}{owner}",
            f"See {field} in docs/workflow-language.md for what it may hold.",
        )
    ]


def _add_hint(key: str, description: str | None) -> str:
    return f"Add {key} ({description.rstrip('.')})." if description else f"Add {key}."


def _explain_one_of(
    error: ValidationError, pointer: str, inside: str, value: Mapping[str, Any]
) -> tuple[str, str, str | None]:
    alternatives: Any = error.validator_value
    options = [tuple(option.get("required", ())) for option in alternatives]
    present = [option for option in options if option and all(k in value for k in option)]
    names = " or ".join(" + ".join(option) for option in options)
    if present:
        given = ", ".join(" + ".join(option) for option in present)
        return (pointer, f"give only one of {names}{inside}, not {given}", "Remove the others.")
    return (pointer, f"needs {names}{inside}", f"Add {names}.")
