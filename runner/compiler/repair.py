"""A schema-invalid document mended just enough for the semantic checks to run on the rest.

A file with a missing ``max_children`` may also have a duplicate id and an undeclared role;
reporting only the schema error would hide the other two until it is fixed. :func:`mend` turns
the document into a schema-valid one by the smallest local changes: an unknown field is dropped,
a missing or malformed field gets a stand-in, and a node that cannot be mended field by field
is replaced whole by a stand-in node that keeps its id. Every place changed is recorded, so the
checks that depend on it are skipped (see ``semantic.Checker``) and no error is reported about
a stand-in. List items are never removed, so the pointers of everything else stay as they are
in the source.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from runner.compiler.source import pointer_join

PLACEHOLDER_ROLE = "__placeholder_role"
"""The role of stand-in nodes; never reported, as stand-ins are never reported on."""

_NODE_LISTS = ("steps", "children", "candidates")
_NODE_FIELDS = ("body", "then", "else")
_NAME_MAPS = {("inputs",): {"type": "string"}, ("roles",): {}}
"""Top-level maps whose entries are kept, mended, rather than dropped: dropping a role would
make every use of it an undeclared role."""

_STAND_INS: dict[str, Any] = {
    "version": 1,
    "name": "workflow",
    "max_children": 1,
    "max_iterations": 1,
    "over": "[]",
    "as": "item",
    "if": "true",
    "until": "true",
    "role": PLACEHOLDER_ROLE,
    "run": ["true"],
    "type": "string",
    "prompt": "",
    "expr": "none",
}
"""Values for required fields that are missing or malformed, by field name."""

_MAX_ROUNDS = 12
_MAX_ERRORS = 500
"""Past this many schema errors the file is too far from a workflow to check further."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Mended:
    """A schema-valid document, and what was changed to make it so."""

    data: Any
    """The mended document."""
    changed: frozenset[str]
    """JSON pointers of every value dropped, added or replaced."""
    stand_ins: frozenset[str]
    """JSON pointers of nodes replaced whole (their children are gone)."""


def mend(data: Any, validator: Draft202012Validator) -> Mended | None:
    """``data`` mended to satisfy ``validator``; ``None`` when it cannot be, such as a document
    that is not a mapping."""
    if not isinstance(data, dict):
        return None
    mender = _Mender(copy.deepcopy(data))
    for _ in range(_MAX_ROUNDS):
        errors = sorted(validator.iter_errors(mender.data), key=lambda e: -len(e.absolute_path))
        if not errors:
            return Mended(
                data=mender.data,
                changed=frozenset(mender.changed),
                stand_ins=frozenset(mender.stand_ins),
            )
        if len(errors) > _MAX_ERRORS:
            return None
        acted = False
        for error in errors:
            acted |= mender.fix(error)
        if not acted:
            return None
    return None


def _pointer(path: list[Any]) -> str:
    pointer = ""
    for token in path:
        pointer = pointer_join(pointer, token)
    return pointer


class _Mender:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.changed: set[str] = set()
        self.stand_ins: set[str] = set()
        self.seen: dict[str, int] = {}
        self.made = 0

    def at(self, path: list[Any]) -> Any:
        current: Any = self.data
        for token in path:
            current = current[token]
        return current

    def resolves(self, path: list[Any]) -> bool:
        try:
            self.at(path)
        except (KeyError, IndexError, TypeError):
            return False
        return True

    def node_paths(self) -> Iterator[list[Any]]:
        """Where nodes sit in the current document."""
        pending: list[list[Any]] = [["steps"]] if "steps" in self.data else []
        while pending:
            path = pending.pop()
            yield path
            node = self.at(path)
            if not isinstance(node, dict):
                continue
            for field in _NODE_LISTS:
                if isinstance(node.get(field), list):
                    pending.extend([*path, field, i] for i in range(len(node[field])))
            pending.extend([*path, field] for field in _NODE_FIELDS if field in node)

    def enclosing_node(self, path: list[Any]) -> list[Any] | None:
        nodes = [p for p in self.node_paths() if path[: len(p)] == p]
        return max(nodes, key=len) if nodes else None

    def fix(self, error: ValidationError) -> bool:
        """Mend one schema error; whether anything changed."""
        path = list(error.absolute_path)
        pointer = _pointer(path)
        if not self.resolves(path) or any(
            pointer == made or pointer.startswith(made + "/") for made in self.stand_ins
        ):
            return False  # an earlier fix removed or replaced it; stand-ins are valid
        key = f"{pointer}\0{error.validator}"
        self.seen[key] = self.seen.get(key, 0) + 1
        node = self.enclosing_node(path)
        if self.seen[key] > 2:  # mending it in place did not hold: replace what holds it
            return self.stand_in(node) if node is not None else self.drop(path)
        value = self.at(path)
        schema = error.schema if isinstance(error.schema, dict) else {}
        if error.validator == "additionalProperties" and isinstance(value, dict):
            extra = [k for k in value if k not in schema.get("properties", {})]
            for name in extra:
                del value[name]
                self.changed.add(_pointer([*path, name]))
            return bool(extra)
        if error.validator == "oneOf" and isinstance(value, dict):
            options: Any = error.validator_value
            if self.choose_one(path, node, value, [list(o.get("required", ())) for o in options]):
                return True
        if error.validator == "required" and isinstance(value, dict):
            names: Any = error.validator_value
            return self.add_missing(path, node, value, list(names))
        if node is not None and path == node:
            return self.stand_in(node)
        if node is not None and path == [*node, "id"]:
            self.at(node)["id"] = self.new_id()
            self.changed.add(pointer)
            return True
        if node is not None and path == [*node, "kind"]:
            return self.stand_in(node)
        return self.drop(self.field_of(path))

    def choose_one(
        self,
        path: list[Any],
        node: list[Any] | None,
        value: dict[str, Any],
        options: list[list[str]],
    ) -> bool:
        """Mend "exactly one of these sets of fields": keep the first set given and drop the
        others, or add the first set when none is given."""
        given = [option for option in options if option and all(k in value for k in option)]
        if given:
            extra = {k for option in given[1:] for k in option} - set(given[0])
            for name in sorted(extra):
                del value[name]
                self.changed.add(_pointer([*path, name]))
            return bool(extra)
        if options and options[0] and all(name in _STAND_INS for name in options[0]):
            return self.add_missing(path, node, value, options[0])
        return False

    def add_missing(
        self, path: list[Any], node: list[Any] | None, value: dict[str, Any], names: list[str]
    ) -> bool:
        acted = False
        for name in names:
            if name in value:
                continue
            if name in _STAND_INS:
                value[name] = copy.deepcopy(_STAND_INS[name])
            elif name == "id" and path == node:
                value[name] = self.new_id()
            elif name in _NODE_FIELDS and path == node:
                self.stand_in([*path, name], create=True)
            elif path == [] and name == "steps":
                self.stand_in(["steps"], create=True)
            elif path == node:
                return self.stand_in(path)
            else:
                return self.drop(path)
            self.changed.add(_pointer([*path, name]))
            acted = True
        return acted

    def field_of(self, path: list[Any]) -> list[Any]:
        """The field of the nearest mapping above ``path`` that holds it."""
        for cut in range(len(path) - 1, -1, -1):
            if isinstance(self.at(path[:cut]), dict):
                return path[: cut + 1]
        return path

    def drop(self, path: list[Any]) -> bool:
        """Remove the value at ``path``, keeping list indices and map entries."""
        if not path:
            return False
        parent = self.at(path[:-1])
        if isinstance(parent, list):
            return self.drop(path[:-1]) if not self.is_node(path) else self.stand_in(path)
        if tuple(path[:-1]) in _NAME_MAPS:
            parent[path[-1]] = copy.deepcopy(_NAME_MAPS[tuple(path[:-1])])
        elif self.is_node(path):
            return self.stand_in(path)
        else:
            del parent[path[-1]]
        self.changed.add(_pointer(path))
        return True

    def is_node(self, path: list[Any]) -> bool:
        return any(path == p for p in self.node_paths())

    def stand_in(self, path: list[Any], *, create: bool = False) -> bool:
        """Replace the node at ``path`` (or put one there) by a leaf that keeps its id."""
        old = None if create else self.at(path)
        node_id = old.get("id") if isinstance(old, dict) else None
        if not isinstance(node_id, str) or not node_id.isidentifier() or not node_id.isascii():
            node_id = self.new_id()
        stand_in = {"kind": "leaf", "id": node_id, "role": PLACEHOLDER_ROLE, "prompt": ""}
        if path[:-1]:
            self.at(path[:-1])[path[-1]] = stand_in
        else:
            self.data[path[-1]] = stand_in
        self.changed.add(_pointer(path))
        self.stand_ins.add(_pointer(path))
        return True

    def new_id(self) -> str:
        self.made += 1
        return f"__stand_in_{self.made}"
