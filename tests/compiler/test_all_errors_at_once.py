"""A file with schema errors still has its other problems reported in the same pass, and no
error follows from the parts that had to be mended to check the rest."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.compiler.pipeline import check_file
from runner.main import main

THREE_PROBLEMS_YAML = """\
version: 1
name: t
roles:
  r: {}
steps:
  kind: sequence
  id: main
  steps:
    - kind: expand
      id: ex
      over: "[1, 2]"
      as: item
      body: {kind: leaf, id: one, role: r, prompt: "hi {{ item }}"}
    - {kind: leaf, id: main, role: ghost, prompt: hi}
"""

THREE_PROBLEMS_STAR = """\
workflow(
    version = 1,
    name = "t",
    roles = {"r": {}},
    steps = sequence(
        id = "main",
        steps = [
            expand(
                id = "ex",
                over = "[1, 2]",
                as_ = "item",
                body = leaf(id = "one", role = "r", prompt = "hi {{ item }}"),
            ),
            leaf(id = "main", role = "ghost", prompt = "hi"),
        ],
    ),
)
"""


def found(tmp_path: Path, text: str, name: str = "w.yaml") -> list[tuple[str, str, str]]:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    checked = check_file(str(path))
    assert checked.workflow is None
    return [(d.rule, d.pointer or "", d.message) for d in checked.diagnostics]


@pytest.mark.parametrize(
    ("name", "text", "lines"),
    [("w.yaml", THREE_PROBLEMS_YAML, (9, 14, 14)), ("w.star", THREE_PROBLEMS_STAR, (8, 14, 14))],
)
def test_schema_ids_and_roles_in_one_pass(
    tmp_path: Path, name: str, text: str, lines: tuple[int, ...]
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    diagnostics = check_file(str(path)).diagnostics
    assert [(d.rule, d.pointer, d.message) for d in diagnostics] == [
        ("schema", "/steps/steps/0", "missing required field 'max_children' in expand 'ex'"),
        (
            "ids",
            "/steps/steps/1/id",
            "the id 'main' is already used by the sequence at /steps",
        ),
        ("roles", "/steps/steps/1/role", "role 'ghost' is not declared"),
    ]
    assert tuple(d.line for d in diagnostics) == lines


def test_the_cli_reports_all_three(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(THREE_PROBLEMS_YAML, encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    assert "3 errors in 1 of 1 file" in capsys.readouterr().out


def test_a_malformed_as_does_not_make_the_body_read_an_unknown_name(tmp_path: Path) -> None:
    problems = found(
        tmp_path,
        """\
        version: 1
        name: t
        roles: {r: {}}
        steps:
          kind: expand
          id: ex
          over: "[1, 2]"
          as: 5
          max_children: 2
          body: {kind: leaf, id: one, role: r, prompt: "{{ file }} {{ nope }}"}
        """,
    )
    assert [rule for rule, _, _ in problems] == ["schema"]


def test_a_malformed_role_is_still_declared(tmp_path: Path) -> None:
    problems = found(
        tmp_path,
        """\
        version: 1
        name: t
        roles: {r: {needs: json_mode}, s: 5}
        steps:
          kind: sequence
          id: main
          steps:
            - {kind: leaf, id: a, role: r, prompt: hi}
            - {kind: leaf, id: b, role: s, prompt: hi}
            - {kind: leaf, id: c, role: ghost, prompt: hi}
        """,
    )
    assert [(rule, pointer) for rule, pointer, _ in problems] == [
        ("schema", "/roles/r/needs"),
        ("schema", "/roles/s"),
        ("roles", "/steps/steps/2/role"),
    ]


def test_reads_into_a_node_that_cannot_be_read_are_not_reported(tmp_path: Path) -> None:
    problems = found(
        tmp_path,
        """\
        version: 1
        name: t
        roles: {r: {}}
        steps:
          kind: sequence
          id: main
          steps:
            - kind: brnch
              id: fan
              children:
                - {kind: leaf, id: inner, role: r, prompt: hi}
            - {kind: reduce, id: sum, inputs: [fan, inner, nowhere], expr: "1"}
            - {kind: leaf, id: late, role: r, prompt: "{{ outputs.later }}"}
            - {kind: leaf, id: later, role: undeclared, prompt: hi}
            - {kind: leaf, id: fan, role: r, prompt: hi}
        """,
    )
    assert problems == [
        ("schema", "/steps/steps/0/kind", "unknown node kind 'brnch'"),
        (
            "references",
            "/steps/steps/2/prompt",
            "the template reads outputs.later, but 'later' runs later in sequence 'main'",
        ),
        ("roles", "/steps/steps/3/role", "role 'undeclared' is not declared"),
        ("ids", "/steps/steps/4/id", "the id 'fan' is already used by the node at /steps/steps/0"),
    ]


def test_malformed_inputs_leave_input_reads_unchecked(tmp_path: Path) -> None:
    problems = found(
        tmp_path,
        """\
        version: 1
        name: t
        inputs: [files]
        roles: {r: {}}
        steps: {kind: leaf, id: a, role: r, prompt: "{{ inputs.files }}"}
        ci: {inputs: {files: 3}}
        """,
    )
    assert [(rule, pointer) for rule, pointer, _ in problems] == [("schema", "/inputs")]


def test_a_mended_bound_does_not_make_a_launch_shape_error(tmp_path: Path) -> None:
    problems = found(
        tmp_path,
        """\
        version: 1
        name: t
        roles: {r: {}}
        budget: {leaves: 1}
        steps:
          kind: loop_until
          id: loop
          until: "true"
          max_iterations: many
          body: {kind: leaf, id: a, role: r, prompt: hi}
        """,
    )
    assert [(rule, pointer) for rule, pointer, _ in problems] == [
        ("schema", "/steps/max_iterations")
    ]


def test_a_missing_body_is_one_error(tmp_path: Path) -> None:
    problems = found(
        tmp_path,
        """\
        version: 1
        name: t
        roles: {r: {}}
        steps: {kind: expand, id: ex, over: "[1]", as: item, max_children: 1}
        """,
    )
    assert [rule for rule, _, _ in problems] == ["schema"]


def test_a_document_that_is_not_a_mapping_is_only_a_schema_error(tmp_path: Path) -> None:
    assert [rule for rule, _, _ in found(tmp_path, "- 1\n- 2\n")] == ["schema"]


def test_a_leaf_with_two_prompts_still_has_its_role_checked(tmp_path: Path) -> None:
    problems = found(
        tmp_path,
        """\
        version: 1
        name: t
        roles: {r: {}}
        steps:
          kind: sequence
          id: main
          steps:
            - kind: leaf
              id: a
              role: ghost
              prompt: hi
              messages: [{role: user, content: "{{ outputs.b }}"}]
            - {kind: reduce, id: b, inputs: [a], role: spectre}
        """,
    )
    assert [(rule, pointer) for rule, pointer, _ in problems] == [
        ("schema", "/steps/steps/0"),
        ("roles", "/steps/steps/0/role"),
        ("schema", "/steps/steps/1"),
        ("schema", "/steps/steps/1"),
    ]
