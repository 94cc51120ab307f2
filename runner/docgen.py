"""The workflow language reference, rendered from the workflow JSON Schema.

``make docs`` writes it to ``docs/workflow-language.md``. A test keeps the checked-in page equal
to ``render(workflow_schema())``, so the page cannot drift from the contract.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import yaml

from runner.compiler.schema import workflow_schema
from runner.compiler.starlark_hints import KEYWORD_FIELDS
from runner.compiler.yaml_loader import Dumper

SCHEMA_FILE = "schemas/workflow.schema.json"
STARLARK_RENAMES = KEYWORD_FIELDS
"""Document fields that are Starlark keywords, and the keyword-argument names they take there."""
_WIDTH = 88
"""Starlark examples wider than this are broken over several lines."""
_NODE_REF = "#/$defs/node"
_BOUNDS = (
    ("minimum", "at least {}"),
    ("exclusiveMinimum", "greater than {}"),
    ("maximum", "at most {}"),
    ("exclusiveMaximum", "less than {}"),
    ("maxItems", "at most {} items"),
    ("maxLength", "at most {} characters"),
)


def node_kinds(schema: Mapping[str, Any]) -> list[str]:
    """The node kinds, in the schema's order."""
    return list(schema["$defs"]["node"]["properties"]["kind"]["enum"])


def common_fields(schema: Mapping[str, Any]) -> list[str]:
    """Fields that every node kind has, with the same definition."""
    kinds = [schema["$defs"][kind] for kind in node_kinds(schema)]
    first = kinds[0].get("properties", {})
    return [
        name
        for name, prop in first.items()
        if all(kind.get("properties", {}).get(name) == prop for kind in kinds[1:])
    ]


def to_starlark(value: Any, kinds: Collection[str]) -> str:
    """``value`` as a Starlark expression; mappings whose ``kind`` is in ``kinds`` become calls."""
    return _star(value, kinds, indent=0, column=0)


def _is_node(value: Any, kinds: Collection[str]) -> bool:
    return isinstance(value, Mapping) and value.get("kind") in kinds


def _parts(value: Mapping[str, Any] | list[Any], kinds: Collection[str]) -> list[tuple[str, Any]]:
    """(prefix, item) pairs of a container: ``key=`` for calls, ``"key": `` for dicts."""
    if isinstance(value, list):
        return [("", item) for item in value]
    if _is_node(value, kinds):
        # The builtin's name already says the kind.
        return [(f"{STARLARK_RENAMES.get(k, k)}=", v) for k, v in value.items() if k != "kind"]
    return [(f"{json.dumps(k, ensure_ascii=False)}: ", v) for k, v in value.items()]


def _brackets(value: Mapping[str, Any] | list[Any], kinds: Collection[str]) -> tuple[str, str]:
    if isinstance(value, list):
        return "[", "]"
    if _is_node(value, kinds):
        return f"{value['kind']}(", ")"
    return "{", "}"


def _flat(value: Any, kinds: Collection[str]) -> str:
    if isinstance(value, Mapping | list):
        start, end = _brackets(value, kinds)
        return start + ", ".join(p + _flat(v, kinds) for p, v in _parts(value, kinds)) + end
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    return json.dumps(value, ensure_ascii=False)


def _star(value: Any, kinds: Collection[str], *, indent: int, column: int) -> str:
    """Pretty form: one line when it fits, else one item per line with trailing commas."""
    flat = _flat(value, kinds)
    # +1 leaves room for the comma that follows an item inside a broken container.
    if column + len(flat) + 1 <= _WIDTH or not isinstance(value, Mapping | list) or not value:
        return flat
    inner = indent + 4
    start, end = _brackets(value, kinds)
    lines = [
        " " * inner + prefix + _star(item, kinds, indent=inner, column=inner + len(prefix)) + ",\n"
        for prefix, item in _parts(value, kinds)
    ]
    return start + "\n" + "".join(lines) + " " * indent + end


def code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _link(ref: str) -> str:
    name = ref.rsplit("/", 1)[-1]
    return "[node](#nodes)" if ref == _NODE_REF else f"[{name}](#{name.lower()})"


def type_text(schema: Mapping[str, Any]) -> str:
    """Short type text: links for references, ``list of X``, ``map of name to X``, enums."""
    if "$ref" in schema:
        return _link(schema["$ref"])
    if "const" in schema:
        return code(schema["const"])
    if "enum" in schema:
        return " | ".join(code(value) for value in schema["enum"])
    kind = schema.get("type")
    items = schema.get("items")
    if kind == "array":
        return f"list of {type_text(items)}" if isinstance(items, Mapping) else "list"
    extra = schema.get("additionalProperties")
    if kind == "object" and isinstance(extra, Mapping):
        return f"map of name to {type_text(extra)}"
    if isinstance(kind, list):
        return " or ".join(kind)
    return str(kind) if kind else "any"


def limits(schema: Mapping[str, Any]) -> list[str]:
    """Bounds, lengths, uniqueness and patterns of one schema, as short phrases."""
    found = [text.format(json.dumps(schema[key])) for key, text in _BOUNDS if key in schema]
    if "minItems" in schema:
        count = schema["minItems"]
        found.append(f"at least {count} item{'' if count == 1 else 's'}")
    if "minLength" in schema:
        count = schema["minLength"]
        found.append("not empty" if count == 1 else f"at least {count} characters")
    if schema.get("uniqueItems"):
        found.append("no duplicates")
    # YAML 1.1 reads some bare words as booleans or numbers, and the schema then rejects them.
    words = [*schema.get("enum", ()), *([schema["const"]] if "const" in schema else [])]
    unsafe = [code(w) for w in words if isinstance(w, str) and yaml.safe_load(w) != w]
    if unsafe:
        found.append(f"in YAML, quote {' and '.join(unsafe)}")
    if "pattern" in schema:
        found.append(f"pattern {code(schema['pattern'])}")
    names = schema.get("propertyNames")
    if isinstance(names, Mapping) and "pattern" in names:
        found.append(f"names: pattern {code(names['pattern'])}")
    items = schema.get("items")
    if isinstance(items, Mapping) and "$ref" not in items:
        found.extend(f"each item: {limit}" for limit in limits(items))
    return found


def describe(schema: Mapping[str, Any]) -> str:
    text = str(schema.get("description", "")).strip()
    found = limits(schema)
    if found:
        sentence = "; ".join(found)
        text = f"{text} {sentence[0].upper()}{sentence[1:]}.".strip()
    if "default" in schema:
        text = f"{text} Default: {code(schema['default'])}.".strip()
    return text


def table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> list[str]:
    # A `|` ends a cell even inside a code span, so every one is escaped.
    def line(cells: tuple[str, ...]) -> str:
        escaped = (cell.replace("|", "\\|").replace("\n", " ") for cell in cells)
        return "| " + " | ".join(escaped) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows), ""]


def field_table(
    schema: Mapping[str, Any], names: Iterable[str], required: Collection[str] | None = None
) -> list[str]:
    """A field table; ``required`` overrides the schema's list, as for the common node fields."""
    needed = set(schema.get("required", ()) if required is None else required)
    props = schema.get("properties", {})
    rows = [
        (code(n), type_text(props[n]), "yes" if n in needed else "no", describe(props[n]))
        for n in names
    ]
    return table(("field", "type", "required", "description"), rows)


def bullets(sentences: list[str]) -> list[str]:
    return [*(f"- {sentence}" for sentence in sentences), ""] if sentences else []


def _choice(word: str, options: list[Mapping[str, Any]]) -> str:
    groups = []
    for option in options:
        if set(option) != {"required"}:
            raise ValueError(f"cannot put {word} option {option!r} in words; teach runner.docgen")
        groups.append(" + ".join(code(name) for name in option["required"]))
    listed = " or ".join([", ".join(groups[:-1]), groups[-1]] if len(groups) > 1 else groups)
    if word == "anyOf":
        return f"Give at least one of {listed}."
    if len(groups) == 2:
        return f"Give either {groups[0]} or {groups[1]}, not both."
    return f"Give exactly one of {listed}."


def constraints(schema: Mapping[str, Any]) -> list[str]:
    """``oneOf``/``anyOf``/``allOf``/``dependentRequired`` as sentences."""
    found = [_choice(word, schema[word]) for word in ("oneOf", "anyOf") if word in schema]
    for part in schema.get("allOf", ()):
        found.extend(constraints(part))
    dependent = schema.get("dependentRequired", {})
    said: set[frozenset[str]] = set()
    for name, needs in dependent.items():
        for need in needs:
            if name in dependent.get(need, ()):
                if frozenset((name, need)) not in said:
                    said.add(frozenset((name, need)))
                    found.append(f"{code(name)} and {code(need)} go together: both or neither.")
            else:
                found.append(f"{code(name)} needs {code(need)}.")
    return found


def _example(example: Any, kinds: Collection[str]) -> list[str]:
    text = yaml.dump(example, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=_WIDTH)
    return [
        "Example:",
        "",
        "```yaml",
        text.rstrip("\n"),
        "```",
        "",
        "The same in Starlark:",
        "",
        "```starlark",
        to_starlark(example, kinds),
        "```",
        "",
    ]


def _intro(schema: Mapping[str, Any], kinds: list[str]) -> list[str]:
    builtins = ", ".join(code(kind) for kind in kinds)
    renames = ", ".join(f"{code(k)} becomes {code(v)}" for k, v in STARLARK_RENAMES.items())
    return [
        f"<!-- Generated from {SCHEMA_FILE} by `make docs`; edit the schema, not this page. -->",
        "",
        f"# {schema.get('title', 'Workflow')} language",
        "",
        str(schema.get("description", "")).strip(),
        "",
        "Write the document directly in YAML, or build it in Starlark. In Starlark the builtins "
        f"{builtins} are named like the node kinds and each returns one node (the kind is "
        "implied); `workflow(...)`, called exactly once, takes the top-level fields. Fields are "
        "keyword arguments named as in the document, except those that are Starlark keywords: "
        f"{renames}. Every example below is shown both ways.",
        "",
        f"This page is generated from `{SCHEMA_FILE}` by `make docs`, so it always matches the "
        "schema the runner validates against.",
        "",
    ]


def _contents(kinds: list[str], shared: list[str]) -> list[str]:
    return [
        "## Contents",
        "",
        "- [Top level](#top-level)",
        "- [Nodes](#nodes): " + ", ".join(f"[{k}](#{k.lower()})" for k in kinds),
        "- [Shared definitions](#shared-definitions): "
        + ", ".join(f"[{name}](#{name.lower()})" for name in shared),
        "",
    ]


def _nodes(schema: Mapping[str, Any], kinds: list[str]) -> list[str]:
    defs = schema["$defs"]
    common = common_fields(schema)
    always = [n for n in common if all(n in defs[k].get("required", ()) for k in kinds)]
    out = ["## Nodes", "", str(defs["node"].get("description", "")), ""]
    out += table(
        ("kind", "what it does"),
        (
            (f"[{k}](#{k.lower()})", defs[k]["description"].split(". ")[0].rstrip(".") + ".")
            for k in kinds
        ),
    )
    out += ["### Fields every node has", "", "Besides `kind`, every node kind takes these.", ""]
    out += field_table(defs[kinds[0]], common, required=always)
    for kind in kinds:
        spec = defs[kind]
        names = [name for name in spec.get("properties", {}) if name not in common]
        out += [f"### `{kind}`", "", str(spec.get("description", "")), ""]
        out += field_table(spec, names)
        out += ["Also takes [the fields every node has](#fields-every-node-has).", ""]
        out += bullets(constraints(spec))
        for example in spec.get("examples", ()):
            out += _example(example, kinds)
    return out


def _shared(schema: Mapping[str, Any], names: list[str]) -> list[str]:
    out = ["## Shared definitions", "", "Objects and strings that fields above refer to.", ""]
    for name in names:
        spec = schema["$defs"][name]
        out += [f"### `{name}`", "", str(spec.get("description", "")), ""]
        if "properties" in spec:
            out += field_table(spec, spec["properties"])
            out += bullets(constraints(spec))
        else:
            tail = "; ".join(limits(spec))
            out += [f"A {type_text(spec)}{': ' + tail if tail else ''}.", ""]
    return out


def render(schema: Mapping[str, Any]) -> str:
    """The markdown reference of the workflow language described by ``schema``."""
    kinds = node_kinds(schema)
    others = [n for n in schema["$defs"] if n not in kinds and n != "node"]
    # Objects first: they are what fields refer to most; plain strings after.
    shared = [n for n in others if "properties" in schema["$defs"][n]]
    shared += [n for n in others if n not in shared]
    top = ["## Top level", "", "The fields of the workflow document.", ""]
    top += field_table(schema, schema.get("properties", {}))
    top += bullets(constraints(schema))
    lines = [
        *_intro(schema, kinds),
        *_contents(kinds, shared),
        *top,
        *_nodes(schema, kinds),
        *_shared(schema, shared),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    """Print the workflow language reference for the installed schema."""
    sys.stdout.write(render(workflow_schema()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
