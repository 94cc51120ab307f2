"""The configuration and mock-script references, rendered from their JSON Schemas.

``make docs`` writes ``docs/configuration.md`` from ``schemas/config.schema.json`` and
``docs/mock-script.md`` from ``schemas/mock-script.schema.json``; a test keeps both equal to
:func:`render`. Fields, defaults and limits come from the schemas' properties; the prose, the
tables of what each value of a field means, and the examples come from two annotations the
validator ignores: ``x-sections`` (a list of ``{title, text, values?, example?}``) at the top
level, and ``x-values`` (value -> meaning) beside an ``enum``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import yaml

from runner.compiler.schema import load_schema
from runner.compiler.yaml_loader import Dumper
from runner.docgen import bullets, code, constraints, field_table, table

PAGES = {
    "configuration": ("config.schema.json", "docs/configuration.md"),
    "mock-script": ("mock-script.schema.json", "docs/mock-script.md"),
}
"""Page name -> (schema file under ``schemas/``, the page it renders to)."""
_WIDTH = 88


def anchor(title: str) -> str:
    """The anchor GitHub gives a heading."""
    kept = "".join(c for c in title.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def sections(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The prose sections of ``schema``, in order."""
    return list(schema.get("x-sections", ()))


def examples(schema: Mapping[str, Any]) -> list[Any]:
    """Every example document the page shows."""
    return [section["example"] for section in sections(schema) if "example" in section]


def resolve(schema: Mapping[str, Any], pointer: str) -> Mapping[str, Any]:
    """The subschema at a local JSON pointer such as ``#/$defs/model``."""
    found: Any = schema
    for token in pointer.removeprefix("#/").split("/"):
        found = found[token.replace("~1", "/").replace("~0", "~")]
    return found  # type: ignore[no-any-return]


def _meanings(schema: Mapping[str, Any]) -> list[str]:
    """The table of what each value of ``schema`` means."""
    rows = [(code(value), str(text)) for value, text in schema.get("x-values", {}).items()]
    return table(("value", "what it does"), rows)


def _object(schema: Mapping[str, Any], pointer: str, shown: Mapping[str, str]) -> list[str]:
    """A field table, then what each value of an enum field means (or a link to the section
    that says), then the fields of nested objects; ``shown``: pointer -> section title."""
    props = schema.get("properties", {})
    out = field_table(schema, props)
    for name, prop in props.items():
        where = f"{pointer}/properties/{name}"
        target, at = (prop["items"], f"{where}/items") if "items" in prop else (prop, where)
        if isinstance(target, Mapping) and "x-values" in target:
            if at in shown:
                title = shown[at]
                out += [f"The values of {code(name)}: see [{title}](#{anchor(title)}).", ""]
            else:
                out += [f"Values of {code(name)}:", "", *_meanings(target)]
        if "properties" in prop:
            out += [f"Fields of {code(name)}:", "", *_object(prop, where, shown)]
    return out + bullets(constraints(schema))


def _example(value: Any) -> list[str]:
    text = yaml.dump(value, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=_WIDTH)
    return ["```yaml", text.rstrip("\n"), "```", ""]


def _section(schema: Mapping[str, Any], section: Mapping[str, Any]) -> list[str]:
    out = [f"## {section['title']}", ""]
    for paragraph in section.get("text", ()):
        out += [str(paragraph), ""]
    if "values" in section:
        out += _meanings(resolve(schema, str(section["values"])))
    if "example" in section:
        out += _example(section["example"])
    return out


def render(schema: Mapping[str, Any], source: str) -> str:
    """The markdown reference of the document ``schema`` describes (``source``: its file)."""
    defs: Mapping[str, Any] = schema.get("$defs", {})
    prose = sections(schema)
    lines = [
        f"<!-- Generated from {source} by `make docs`; edit the schema, not this page. -->",
        "",
        f"# {schema.get('title', source)}",
        "",
        str(schema.get("description", "")).strip(),
        "",
        f"This page is generated from `{source}` by `make docs`, so it always matches the "
        "schema the runner checks these files against.",
        "",
        "## Contents",
        "",
        *(f"- [{s['title']}](#{anchor(str(s['title']))})" for s in prose),
        "- [Fields](#fields): "
        + ", ".join(["[top level](#top-level)", *(f"[{name}](#{name.lower()})" for name in defs)]),
        "",
    ]
    shown = {str(s["values"]): str(s["title"]) for s in prose if "values" in s}
    for section in prose:
        lines += _section(schema, section)
    lines += ["## Fields", "", "### Top level", ""]
    lines += _object(schema, "#", shown)
    for name, spec in defs.items():
        lines += [f"### `{name}`", "", str(spec.get("description", "")), ""]
        lines += _object(spec, f"#/$defs/{name}", shown)
    return "\n".join(lines).rstrip("\n") + "\n"


def page(name: str) -> str:
    """The page ``name`` (a key of :data:`PAGES`) for the installed schema."""
    schema_file, _ = PAGES[name]
    return render(load_schema(schema_file), f"schemas/{schema_file}")


def main(argv: list[str] | None = None) -> int:
    """Print the page named on the command line: ``configuration`` or ``mock-script``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in PAGES:
        sys.stderr.write(f"usage: python -m runner.docgen_config {{{','.join(PAGES)}}}\n")
        return 2
    sys.stdout.write(page(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
