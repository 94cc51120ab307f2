"""Schema and syntax errors: each fires on a bad workflow, where the source puts the offending
field, with a message and a fix; each stays quiet on the workflow with that one thing fixed."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import position, rendered

from runner.compiler.pipeline import Checked, check_file
from runner.errors import Diagnostic

HEADER = """\
version: 1
name: demo
roles:
  writer: {}
"""


def doc(steps: str, *, header: str = HEADER) -> str:
    """A workflow document whose root node is ``steps`` (a YAML block, dedented)."""
    return header + "steps:\n" + textwrap.indent(textwrap.dedent(steps).strip("\n"), "  ") + "\n"


def check(tmp_path: Path, text: str, name: str = "workflow.yaml") -> Checked:
    """Write ``text`` to ``tmp_path/name`` and check that file."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return check_file(str(path))


def find(checked: Checked, phrase: str) -> Diagnostic:
    """The one diagnostic whose message contains ``phrase``."""
    found = [d for d in checked.diagnostics if phrase in d.message]
    assert len(found) == 1, rendered(checked)
    return found[0]


@dataclass(frozen=True)
class Case:
    """A bad document, the closely related good one, and what the diagnostic must say."""

    bad: str
    good: str
    rule: str
    pointer: str | None
    at: str | tuple[int, int]
    """Where the diagnostic points: the text starting there, or (line, col)."""
    phrase: str
    """A key phrase of the message."""
    hint: str = ""
    """A phrase of the hint ("" for any hint)."""


LEAF = """
kind: leaf
id: draft
role: writer
FIELD
"""

EXPAND = """
kind: expand
id: fan
over: "[1, 2]"
as: item
FIELD
body: {kind: leaf, id: one, role: writer, prompt: "{{ item }}"}
"""

LOOP = """
kind: loop_until
id: polish
until: "true"
FIELD
body: {kind: leaf, id: again, role: writer, prompt: Polish it.}
"""

REDUCE = """
kind: sequence
id: main
steps:
  - {kind: leaf, id: draft, role: writer, prompt: Draft it.}
  - kind: reduce
    id: merge
    inputs: [draft]
    FIELD
"""

TOURNAMENT = """
kind: tournament
id: best
FIELD
"""

CASES = {
    "unknown-field": Case(
        bad=doc(LEAF.replace("FIELD", "promt: Say hi.")),
        good=doc(LEAF.replace("FIELD", "prompt: Say hi.")),
        rule="schema",
        pointer="/steps/promt",
        at="Say hi.",
        phrase="unknown field 'promt' in leaf 'draft'",
        hint="Did you mean 'prompt'?",
    ),
    "tests-indented-under-steps": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi.\ntests:\n  - {name: t, expect: 'true'}")),
        good=doc(LEAF.replace("FIELD", "prompt: Hi.")) + "tests:\n  - {name: t, expect: 'true'}\n",
        rule="schema",
        pointer="/steps/tests",
        at="- {name: t",
        phrase="unknown field 'tests' in leaf 'draft'",
        hint="'tests' belongs to the workflow, not to a node: unindent it to the top level, "
        "beside 'steps'.",
    ),
    "empty-sequence": Case(
        bad=doc("kind: sequence\nid: main\nsteps: []"),
        good=doc(
            "kind: sequence\nid: main\nsteps: [{kind: leaf, id: a, role: writer, prompt: hi}]"
        ),
        rule="schema",
        pointer="/steps/steps",
        at="[]",
        phrase="steps needs at least 1 item in sequence 'main'",
        hint="List at least 1 item in steps (the children, run one after the other).",
    ),
    "env-listed-twice": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi."), header=HEADER + "env: [CI, CI]\n"),
        good=doc(LEAF.replace("FIELD", "prompt: Hi."), header=HEADER + "env: [CI]\n"),
        rule="schema",
        pointer="/env",
        at="[CI, CI]",
        phrase='env lists "CI" twice at the top level',
        hint='Remove the second "CI" from env.',
    ),
    "unknown-top-level-field": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi."), header=HEADER + "descripton: Drafts.\n"),
        good=doc(LEAF.replace("FIELD", "prompt: Hi."), header=HEADER + "description: Drafts.\n"),
        rule="schema",
        pointer="/descripton",
        at="Drafts.",
        phrase="unknown field 'descripton' at the top level",
        hint="Did you mean 'description'?",
    ),
    "missing-max-children": Case(
        bad=doc(EXPAND.replace("FIELD", "")),
        good=doc(EXPAND.replace("FIELD", "max_children: 2")),
        rule="schema",
        pointer="/steps",
        at="kind: expand",
        phrase="missing required field 'max_children' in expand 'fan'",
        hint="Add max_children",
    ),
    "missing-max-iterations": Case(
        bad=doc(LOOP.replace("FIELD", "")),
        good=doc(LOOP.replace("FIELD", "max_iterations: 3")),
        rule="schema",
        pointer="/steps",
        at="kind: loop_until",
        phrase="missing required field 'max_iterations' in loop_until 'polish'",
        hint="Add max_iterations",
    ),
    "wrong-type": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi.\ntimeout_s: soon")),
        good=doc(LEAF.replace("FIELD", "prompt: Hi.\ntimeout_s: 30")),
        rule="schema",
        pointer="/steps/timeout_s",
        at="soon",
        phrase="timeout_s must be a number, not a string in leaf 'draft'",
        hint="Write it as a number.",
    ),
    "bad-enum-memo": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi.\nmemo: maybe")),
        good=doc(LEAF.replace("FIELD", "prompt: Hi.\nmemo: on")),
        rule="schema",
        pointer="/steps/memo",
        at="maybe",
        phrase='memo must be one of "on", "off", "read", not "maybe"',
        hint='Use one of "on", "off", "read".',
    ),
    "bad-enum-with-suggestion": Case(
        bad=doc(
            "kind: branch\nid: both\nisolation: worktre\nchildren: [{kind: leaf, "
            "id: a, role: writer, prompt: A.}]"
        ),
        good=doc(
            "kind: branch\nid: both\nisolation: worktree\nchildren: [{kind: leaf, "
            "id: a, role: writer, prompt: A.}]"
        ),
        rule="schema",
        pointer="/steps/isolation",
        at="worktre\n",
        phrase='isolation must be one of "shared", "state", "worktree", not "worktre"',
        hint="Did you mean 'worktree'?",
    ),
    "unknown-kind": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi.").replace("kind: leaf", "kind: leef")),
        good=doc(LEAF.replace("FIELD", "prompt: Hi.")),
        rule="schema",
        pointer="/steps/kind",
        at="leef",
        phrase="unknown node kind 'leef'",
        hint="Did you mean 'leaf'?",
    ),
    "bad-name": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi."), header=HEADER.replace("demo", "Demo Flow")),
        good=doc(LEAF.replace("FIELD", "prompt: Hi."), header=HEADER.replace("demo", "demo-flow")),
        rule="schema",
        pointer="/name",
        at="Demo Flow",
        phrase='"Demo Flow" is not valid for name at the top level',
        hint="lowercase letters, digits",
    ),
    "bad-id": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi.").replace("id: draft", "id: 1st-draft")),
        good=doc(LEAF.replace("FIELD", "prompt: Hi.").replace("id: draft", "id: first_draft")),
        rule="schema",
        pointer="/steps/id",
        at="1st-draft",
        phrase='"1st-draft" is not valid for id',
        hint="not starting with a digit",
    ),
    "leaf-prompt-and-messages": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi.\nmessages: [{role: user, content: Hi.}]")),
        good=doc(LEAF.replace("FIELD", "messages: [{role: user, content: Hi.}]")),
        rule="schema",
        pointer="/steps",
        at="kind: leaf",
        phrase="give only one of prompt or messages in leaf 'draft'",
        hint="Remove the others.",
    ),
    "leaf-neither-prompt-nor-messages": Case(
        bad=doc(LEAF.replace("FIELD", "temperature: 0.2")),
        good=doc(LEAF.replace("FIELD", "temperature: 0.2\nprompt: Hi.")),
        rule="schema",
        pointer="/steps",
        at="kind: leaf",
        phrase="needs prompt or messages in leaf 'draft'",
        hint="Add prompt or messages.",
    ),
    "reduce-expr-and-role-prompt": Case(
        bad=doc(
            REDUCE.replace("FIELD", "expr: outputs.draft\n    role: writer\n    prompt: Merge.")
        ),
        good=doc(REDUCE.replace("FIELD", "role: writer\n    prompt: Merge.")),
        rule="schema",
        pointer="/steps/steps/1",
        at="kind: reduce",
        phrase="give only one of expr or role + prompt in reduce 'merge'",
        hint="Remove the others.",
    ),
    "tournament-no-judge-nor-score": Case(
        bad=doc(
            TOURNAMENT.replace(
                "FIELD", "count: 2\nbody: {kind: leaf, id: try_, role: writer, prompt: Try.}"
            )
        ),
        good=doc(
            TOURNAMENT.replace(
                "FIELD",
                "count: 2\nbody: {kind: leaf, id: try_, role: writer, "
                "prompt: Try.}\nscore: candidate | length",
            )
        ),
        rule="schema",
        pointer="/steps",
        at="kind: tournament",
        phrase="needs judge or score in tournament 'best'",
        hint="Add judge or score.",
    ),
    "count-without-body": Case(
        bad=doc(TOURNAMENT.replace("FIELD", "count: 2\nscore: candidate | length")),
        good=doc(
            TOURNAMENT.replace(
                "FIELD",
                "count: 2\nscore: candidate | length\n"
                "body: {kind: leaf, id: try_, role: writer, "
                "prompt: Try.}",
            )
        ),
        rule="schema",
        pointer="/steps",
        at="kind: tournament",
        phrase="'count' needs 'body' too in tournament 'best'",
        hint="Add 'body' or remove 'count'.",
    ),
    "minimum": Case(
        bad=doc(EXPAND.replace("FIELD", "max_children: 0")),
        good=doc(EXPAND.replace("FIELD", "max_children: 1")),
        rule="schema",
        pointer="/steps/max_children",
        at="0\n",
        phrase="max_children must be at least 1, not 0 in expand 'fan'",
        hint="Use a value at least 1.",
    ),
    "duplicate-key": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi.\nrole: editor")),
        good=doc(LEAF.replace("FIELD", "prompt: Hi.")),
        rule="syntax",
        pointer="/steps/role",
        at="role: editor",
        phrase="the field 'role' is given twice",
        hint="Keep one of them",
    ),
    "yaml-syntax-error": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi.\n temperature: 0.2")),
        good=doc(LEAF.replace("FIELD", "prompt: Hi.\ntemperature: 0.2")),
        rule="syntax",
        pointer=None,
        at=": 0.2",
        phrase="invalid YAML: mapping values are not allowed",
        hint="indentation",
    ),
    "non-string-key": Case(
        bad=doc(LEAF.replace("FIELD", "prompt: Hi."), header=HEADER + "  2: {}\n"),
        good=doc(LEAF.replace("FIELD", "prompt: Hi."), header=HEADER + "  r2: {}\n"),
        rule="syntax",
        pointer="/roles",
        at="2: {}",
        phrase="the key '2' is not a string",
        hint="Quote the key.",
    ),
    "empty-file": Case(
        bad="# a workflow will go here\n",
        good=doc(LEAF.replace("FIELD", "prompt: Hi.")),
        rule="syntax",
        pointer=None,
        at=(1, 1),
        phrase="the file is empty",
        hint="version, name and steps",
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_fires_at_the_offending_field(tmp_path: Path, case: Case) -> None:
    checked = check(tmp_path, case.bad)
    assert checked.workflow is None
    assert {d.rule for d in checked.diagnostics} == {case.rule}, rendered(checked)
    found = find(checked, case.phrase)
    line, col = case.at if isinstance(case.at, tuple) else position(case.bad, case.at)
    assert (found.rule, found.pointer, found.line, found.col) == (
        case.rule,
        case.pointer,
        line,
        col,
    )
    assert found.file == str(tmp_path / "workflow.yaml")
    assert found.hint
    assert case.hint in found.hint


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_quiet_once_fixed(tmp_path: Path, case: Case) -> None:
    checked = check(tmp_path, case.good)
    assert rendered(checked) == []
    assert checked.workflow is not None


@pytest.mark.parametrize("value", ["on", "off", "read"])
def test_unquoted_memo_values_stay_strings(tmp_path: Path, value: str) -> None:
    checked = check(tmp_path, doc(LEAF.replace("FIELD", f"prompt: Hi.\nmemo: {value}")))
    assert rendered(checked) == []
    assert checked.workflow is not None
    assert checked.workflow.steps.memo == value


def test_quoting_hint_for_a_yaml_boolean_memo(tmp_path: Path) -> None:
    text = doc(LEAF.replace("FIELD", "prompt: Hi.\nmemo: true"))
    found = find(check(tmp_path, text), "memo must be one of")
    assert (found.pointer, (found.line, found.col)) == ("/steps/memo", position(text, "true"))
    assert found.hint == "Quote it: memo: 'on'."


def test_empty_file_without_any_text(tmp_path: Path) -> None:
    (found,) = check(tmp_path, "").diagnostics
    assert (found.rule, found.line, found.col) == ("syntax", 1, 1)
    assert "the file is empty" in found.message


GOOD_JSON: dict[str, Any] = {
    "version": 1,
    "name": "demo",
    "roles": {"writer": {}},
    "steps": {"kind": "leaf", "id": "draft", "role": "writer", "prompt": "Hi."},
}


def test_json_workflow_is_accepted(tmp_path: Path) -> None:
    checked = check(tmp_path, json.dumps(GOOD_JSON, indent=2), name="workflow.json")
    assert rendered(checked) == []
    assert checked.workflow is not None
    assert checked.workflow.name == "demo"


def test_json_workflow_errors_have_positions(tmp_path: Path) -> None:
    bad = {**GOOD_JSON, "steps": {**GOOD_JSON["steps"], "colour": "red"}}
    text = json.dumps(bad, indent=2)
    found = find(check(tmp_path, text, name="workflow.json"), "unknown field 'colour'")
    assert (found.rule, found.pointer) == ("schema", "/steps/colour")
    assert (found.line, found.col) == position(text, '"red"')
    assert found.hint


MULTI = """\
version: 1
name: Demo
roles:
  writer: {}
steps:
  kind: sequence
  id: main
  timeout_s: soon
  steps:
    - kind: leaf
      id: draft
      role: writer
      prompt: Hi.
      colour: red
"""


def test_reports_every_schema_error_sorted_by_line(tmp_path: Path) -> None:
    checked = check(tmp_path, MULTI)
    assert [(d.rule, d.pointer, d.line) for d in checked.diagnostics] == [
        ("schema", "/name", 2),
        ("schema", "/steps/timeout_s", 8),
        ("schema", "/steps/steps/0/colour", 14),
    ]
    assert all(d.hint for d in checked.diagnostics)


STAR = """\
workflow(
    name = "demo",
    roles = {"writer": {}},
    steps = sequence(
        id = "main",
        steps = [
            leaf(id = "draft", role = "writer", prompt = "Hi."),
            leaf(id = "polish", role = "writer", FIELD = "Polish it."),
        ],
    ),
)
"""


def test_starlark_schema_error_points_at_the_builtin_call(tmp_path: Path) -> None:
    text = STAR.replace("FIELD", "promt")
    checked = check(tmp_path, text, name="workflow.star")
    found = find(checked, "unknown field 'promt' in leaf 'polish'")
    assert (found.file, found.pointer) == (str(tmp_path / "workflow.star"), "/steps/steps/1/promt")
    assert (found.line, found.col) == position(text, 'leaf(id = "polish"')
    assert found.hint is not None
    assert "Did you mean 'prompt'?" in found.hint


def test_starlark_workflow_field_given_to_a_node_says_where_it_goes(tmp_path: Path) -> None:
    text = STAR.replace("FIELD", 'roles = {"w": {}}, prompt')
    found = find(check(tmp_path, text, name="workflow.star"), "unknown field 'roles'")
    assert found.hint == (
        "'roles' belongs to the workflow, not to a node: pass it to workflow(...), beside steps."
    )


def test_starlark_quiet_once_fixed(tmp_path: Path) -> None:
    checked = check(tmp_path, STAR.replace("FIELD", "prompt"), name="workflow.star")
    assert rendered(checked) == []


REPEATED = (
    HEADER
    + "steps: {kind: leaf, id: judge, role: writer, prompt: hi}\n"
    + "tests:\n  - {name: approves, expect: 'outputs.judge | length > 0', SETTINGS}\n"
)


@pytest.mark.parametrize(
    ("settings", "phrase"),
    [
        ("repeat: 0", "repeat"),
        ("repeat: 101", "repeat"),
        ("pass_rate: 0", "pass_rate"),
        ("pass_rate: 1.5", "pass_rate"),
        ("repeat: 2.5", "repeat"),
    ],
)
def test_repeat_and_pass_rate_out_of_range_are_errors(
    tmp_path: Path, settings: str, phrase: str
) -> None:
    checked = check(tmp_path, REPEATED.replace("SETTINGS", settings))
    assert checked.workflow is None
    assert any(phrase in d.message or phrase in (d.pointer or "") for d in checked.diagnostics)


def test_a_repeated_test_with_a_rate_compiles(tmp_path: Path) -> None:
    checked = check(tmp_path, REPEATED.replace("SETTINGS", "repeat: 5, pass_rate: 0.8"))
    assert checked.workflow is not None, rendered(checked)
    test = (checked.workflow.tests or ())[0]
    assert (test.repeat, test.pass_rate) == (5, 0.8)
