"""The fast paths of validation answer what the general ones do.

A valid document is told valid by the compiled workflow schema check instead of the JSON Schema
validator, plain templates are read without Jinja, output schemas are checked against the
meta-schema once per distinct schema, and most YAML scalars are built without the constructor.
Each is held here to the path it stands in for, on the compiler's random documents and on
inputs written to sit at the edges.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from runner import ir
from runner.compiler import starlark_loader
from runner.compiler.pipeline import check_file
from runner.compiler.plain_templates import plain_reads
from runner.compiler.schema import load_schema
from runner.compiler.yaml_loader import _Loader, load_yaml
from runner.expressions import ExpressionError, analyze_expression, analyze_template
from runner.main import main
from runner.schemas import compile_check
from tests.compiler.test_properties import PROPERTIES

WORKFLOW = load_schema("workflow.schema.json")
CHECK = compile_check(WORKFLOW)
VALIDATOR = Draft202012Validator(WORKFLOW)


# The compiled check is held to the validator on random documents, valid and mutated, in
# tests/compiler/test_properties.py, where those documents are made.


def test_the_workflow_and_configuration_schemas_compile() -> None:
    assert CHECK is not None
    assert compile_check(load_schema("config.schema.json")) is not None


@pytest.mark.parametrize(
    "workflow", sorted(str(p) for p in Path("workflows").glob("*") if p.suffix == ".yaml")
)
def test_the_shipped_workflows_pass_the_compiled_check(workflow: str) -> None:
    assert CHECK is not None
    document = yaml.load(Path(workflow).read_text(encoding="utf-8"), Loader=_Loader)
    assert CHECK(document)
    assert VALIDATOR.is_valid(document)


PIECES = st.sampled_from(
    [
        "text ",
        "\n",
        "{",
        "}",
        "}}",
        "{{ outputs.a.b }}",
        "{{outputs.c}}",
        "{{ inputs.n }}",
        "{{ env.HOME }}",
        "{{ file }}",
        "{{ outputs }}",
        "{{ a.not }}",
        "{{ true }}",
        "{{ self }}",
        "{{ loop }}",
        "{{ range }}",
        "{{ x | upper }}",
        "{{- x }}",
        "{% if x %}y{% endif %}",
        "{# note #}",
        "{{ x",
        "{{ 1 }}",
        "{{ outputs['a'] }}",
    ]
)


def _general(source: str, *, expression: bool) -> Any:
    try:
        return (analyze_expression if expression else analyze_template)(source)
    except ExpressionError:
        return "does not compile"


@PROPERTIES
@given(pieces=st.lists(PIECES, max_size=6))
def test_plain_templates_read_what_jinja_reads(pieces: list[str]) -> None:
    source = "".join(pieces)
    fast = plain_reads(source, expression=False)
    if fast is not None:
        assert fast == _general(source, expression=False), source


@pytest.mark.parametrize(
    "source",
    ["outputs.a.done", " inputs.flag ", "x", "outputs.a", "true", "not x", "x.y | length", "a b"],
)
def test_plain_expressions_read_what_jinja_reads(source: str) -> None:
    fast = plain_reads(source, expression=True)
    general = _general(source, expression=True)
    assert fast is None or fast == general
    if source in ("outputs.a.done", " inputs.flag ", "x"):
        assert fast is not None  # the common case takes the fast path


def test_a_plain_template_takes_the_fast_path() -> None:
    reads = plain_reads("Fix {{ outputs.lint.stdout }} in {{ file }}.\n", expression=False)
    assert reads is not None
    assert reads.outputs == {"lint"}
    assert reads.names == {"outputs", "file"}
    assert plain_reads("{{{ x }}}", expression=False) is None  # Jinja reads "{ x }" there


BAD_SCHEMA = "{type: object, properties: {a: {type: strnig}}}"


def test_every_node_with_an_invalid_output_schema_is_reported(tmp_path: Path) -> None:
    steps = "\n".join(
        f"    - {{kind: leaf, id: s{i}, role: r, prompt: hi, output: {BAD_SCHEMA}}}"
        for i in range(3)
    )
    path = tmp_path / "w.yaml"
    path.write_text(
        f"version: 1\nname: w\nroles: {{r: {{}}}}\n"
        f"steps:\n  kind: sequence\n  id: main\n  steps:\n{steps}\n",
        encoding="utf-8",
    )
    found = check_file(str(path)).diagnostics
    assert [d.pointer for d in found] == [f"/steps/steps/{i}/output" for i in range(3)]
    assert len({d.message for d in found}) == 1
    assert "'strnig' is not valid" in found[0].message


SCALARS = [
    "0",
    "7",
    "017",
    "0o17",
    "0x1f",
    "1_000",
    "+5",
    "-3",
    "1:30",
    "1.5",
    "1e3",
    "١٢",
    "'12'",
    '"text"',
    "plain text",
    "true",
    "null",
    "~",
    "",
]


@pytest.mark.parametrize("scalar", SCALARS)
def test_scalars_load_as_the_constructor_builds_them(scalar: str) -> None:
    text = f"value: {scalar}\nlist: [{scalar or 'x'}]\n"
    document = load_yaml("t.yaml", text)
    expected = yaml.load(text, Loader=_Loader)
    assert document.data == expected
    assert [type(v) for v in document.data.values()] == [type(v) for v in expected.values()]


def test_validate_evaluates_a_valid_starlark_file_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "w.star"
    path.write_text(
        'workflow(name = "w", roles = {"r": {}},\n'
        '         steps = leaf(id = "a", role = "r", prompt = "{{ inputs }}"))\n',
        encoding="utf-8",
    )
    before = starlark_loader.EVALUATIONS.copy()
    assert main(["validate", str(path)]) == 0
    assert "1 file valid" in capsys.readouterr().out
    # Where the name is set is found (by a second evaluation) only for a message that needs it.
    assert starlark_loader.EVALUATIONS - before == {"document": 1}


def test_equal_output_schemas_share_one_frozen_object(tmp_path: Path) -> None:
    schemas = ["{const: 1}", "{const: 1}", "{const: 1.0}", "{const: true}"]
    steps = "\n".join(
        f"    - {{kind: leaf, id: s{i}, role: r, prompt: hi, output: {schema}}}"
        for i, schema in enumerate(schemas)
    )
    path = tmp_path / "w.yaml"
    path.write_text(
        f"version: 1\nname: w\nroles: {{r: {{}}}}\n"
        f"steps:\n  kind: sequence\n  id: main\n  steps:\n{steps}\n",
        encoding="utf-8",
    )
    checked = check_file(str(path))
    assert checked.workflow is not None
    root = checked.workflow.steps
    assert isinstance(root, ir.Sequence)
    outputs = [getattr(step, "output", None) for step in root.steps]
    assert outputs[0] is outputs[1]
    assert [type(output["const"]) for output in outputs] == [int, int, float, bool]


LOCATED = """\
base: &base {role: r, prompt: "hi"}
steps:
  - <<: *base
    id: a
  - id: "b~/c"
    list: [1, {x: 2}]
  - *base
"""


@pytest.mark.parametrize(
    ("pointer", "where"),
    [
        ("", (1, 1)),
        ("/base/prompt", (1, 31)),
        ("/steps/0", (3, 5)),
        ("/steps/0/role", (1, 20)),  # merged from the anchor: where the anchor has it
        ("/steps/0/id", (4, 9)),
        ("/steps/1/id", (5, 9)),
        ("/steps/1/list/1/x", (6, 19)),
        ("/steps/2/prompt", (1, 31)),  # an alias is where its anchor is
        ("/steps/3", None),
        ("/steps/01", None),
        ("/nothing", None),
    ],
)
def test_positions_are_found_in_the_composed_nodes(
    pointer: str, where: tuple[int, int] | None
) -> None:
    document = load_yaml("t.yaml", LOCATED)
    found = document.locator(pointer)
    assert (found[1:] if found else None) == where


def test_starlark_values_read_by_orjson_are_the_standard_library_s(tmp_path: Path) -> None:
    path = tmp_path / "w.star"
    path.write_text(
        'OUT = {"type": "object", "properties": {"n": {"type": "integer",\n'
        '       "maximum": 100000000000000000000000000000, "minimum": -0.0}},\n'
        '       "description": "t\\u00e9st \\" \\\\ \\n", "enum": [1.5, 1e300, True, None]}\n'
        'workflow(name = "w", roles = {"r": {}},\n'
        '         steps = leaf(id = "a", role = "r", prompt = "hi", output = OUT))\n',
        encoding="utf-8",
    )
    document = starlark_loader.load_starlark(str(path))
    assert document is not None
    output = document.data["steps"]["output"]
    assert output["properties"]["n"]["maximum"] == 10**29  # beyond 64 bits: the standard path
    assert str(output["properties"]["n"]["minimum"]) == "-0.0"
    assert output["description"] == 'tést " \\ \n'
    assert output["enum"] == [1.5, 1e300, True, None]
    assert json.loads is _STANDARD_LOADS  # put back after the evaluation


_STANDARD_LOADS = json.loads


def test_starlark_values_read_again_are_the_values_read_first(tmp_path: Path) -> None:
    path = tmp_path / "w.star"
    path.write_text(
        'E = [1, 1.0, True, -0.0, 0.0, 0, "1", None, 10000000000000000000000, [1], {"a": 1}]\n'
        "def step(i):\n"
        '    return leaf(id = "s%d" % i, role = "r", prompt = "the same prompt",\n'
        '                output = {"enum": E + E})\n'
        'workflow(name = "w", roles = {"r": {}},\n'
        '         steps = sequence(id = "main", steps = [step(0), step(1)]))\n',
        encoding="utf-8",
    )
    document = starlark_loader.load_starlark(str(path))
    assert document is not None
    first, second = document.data["steps"]["steps"]
    once = [1, 1.0, True, -0.0, 0.0, 0, "1", None, 10**22, [1], {"a": 1}]
    assert first["output"]["enum"] == second["output"]["enum"] == once + once
    assert [type(v) for v in first["output"]["enum"]] == [type(v) for v in once + once]
    assert [str(v) for v in first["output"]["enum"]][3:5] == ["-0.0", "0.0"]
    # Each distinct text is read once: the second step's prompt is the first's string.
    assert first["prompt"] is second["prompt"]
    assert first["output"]["enum"][9] is not first["output"]["enum"][20]  # lists stay apart
