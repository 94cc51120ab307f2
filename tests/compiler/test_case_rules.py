"""A workflow's evaluation ``cases`` and its ``metric``, in YAML and in Starlark: they compile to
the IR and back, are part of the workflow's hash, and their mistakes are reported where they
are, with a fix, as ``--input`` values would be refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import position, rendered

from runner.canonical import content_hash
from runner.compiler.build import to_document
from runner.compiler.pipeline import Checked, check_file
from runner.errors import Diagnostic
from runner.main import main

YAML = """\
version: 1
name: summarize
inputs:
  text: {type: string}
  limit: {type: integer, default: 10}
roles:
  writer: {}
steps:
  kind: leaf
  id: write
  role: writer
  prompt: "Summarize {{ inputs.text }} in {{ inputs.limit }} words."
tests:
  - name: short
    expect: "outputs.write | length < 200"
metric: "200 - (outputs.write | length)"
cases:
  - name: hello
    inputs: {text: hello}
  - name: story.long
    description: a longer text
    inputs: {text: a long story, limit: 5}
"""

STAR = """\
workflow(
    name = "summarize",
    inputs = {"text": {"type": "string"}, "limit": {"type": "integer", "default": 10}},
    roles = {"writer": {}},
    steps = leaf(
        id = "write",
        role = "writer",
        prompt = "Summarize {{ inputs.text }} in {{ inputs.limit }} words.",
    ),
    tests = [{"name": "short", "expect": "outputs.write | length < 200"}],
    metric = "200 - (outputs.write | length)",
    cases = [
        {"name": "hello", "inputs": {"text": "hello"}},
        {
            "name": "story.long",
            "description": "a longer text",
            "inputs": {"text": "a long story", "limit": 5},
        },
    ],
)
"""

SOURCES = {"yaml": ("summarize.yaml", YAML), "starlark": ("summarize.star", STAR)}


def _check(root: Path, language: str, *, edit: tuple[str, str] = ("", "")) -> Checked:
    name, text = SOURCES[language]
    old, new = edit
    assert old in text
    path = root / name
    path.write_text(text.replace(old, new), encoding="utf-8")
    return check_file(str(path))


def _only(checked: Checked) -> Diagnostic:
    assert len(checked.diagnostics) == 1, rendered(checked)
    return checked.diagnostics[0]


@pytest.mark.parametrize("language", SOURCES)
def test_cases_and_metric_compile_to_the_ir_and_back(tmp_path: Path, language: str) -> None:
    checked = _check(tmp_path, language)
    workflow = checked.workflow
    assert workflow is not None, rendered(checked)
    assert workflow.metric == "200 - (outputs.write | length)"
    assert workflow.cases is not None
    assert [(c.name, dict(c.inputs), c.description) for c in workflow.cases] == [
        ("hello", {"text": "hello"}, None),
        ("story.long", {"text": "a long story", "limit": 5}, "a longer text"),
    ]
    document = to_document(workflow)
    assert document["cases"][1] == {
        "name": "story.long",
        "description": "a longer text",
        "inputs": {"text": "a long story", "limit": 5},
    }
    assert document["metric"] == workflow.metric
    assert workflow.hash == content_hash(document)


def test_both_languages_give_the_same_document_and_the_hash_covers_cases(tmp_path: Path) -> None:
    def compiled(folder: str, language: str, edit: tuple[str, str] = ("", "")) -> str:
        (tmp_path / folder).mkdir()
        workflow = _check(tmp_path / folder, language, edit=edit).workflow
        assert workflow is not None
        return workflow.hash

    assert compiled("yaml", "yaml") == compiled("starlark", "starlark")
    changed_case = compiled("case", "yaml", ("limit: 5}", "limit: 6}"))
    changed_metric = compiled("metric", "yaml", ("200 - (", "300 - ("))
    assert len({compiled("again", "yaml"), changed_case, changed_metric}) == 3


@pytest.mark.parametrize("language", SOURCES)
def test_an_undeclared_input_is_named_with_a_guess(tmp_path: Path, language: str) -> None:
    old, new = (
        ('{"text": "hello"}', '{"txt": "hello"}')
        if language == "starlark"
        else (
            "{text: hello}",
            "{txt: hello}",
        )
    )
    found = _check(tmp_path, language, edit=(old, new)).diagnostics
    assert [(d.rule, d.pointer, d.message) for d in found] == [
        (
            "cases",
            "/cases/0/inputs",
            "case 'hello' does not set the input 'text', which has no default",
        ),
        (
            "cases",
            "/cases/0/inputs/txt",
            "case 'hello' sets 'txt', which is not an input of the workflow",
        ),
    ]
    assert found[1].hint == (
        "Declare it under inputs, or take it out of the case (declared: text, limit). "
        "Did you mean 'text'?"
    )
    assert found[0].hint == (
        "Give text a value of type string in the case's inputs, or give the input a default."
    )
    if language == "yaml":
        text = YAML.replace(old, new)
        assert (found[1].line, found[1].col) == position(text, "hello}")
    else:  # Starlark places it at the workflow(...) call that built the list
        assert (found[1].line, found[1].col) == (1, 1)


@pytest.mark.parametrize("language", SOURCES)
def test_a_value_of_the_wrong_type_is_reported(tmp_path: Path, language: str) -> None:
    old = '"limit": 5' if language == "starlark" else "limit: 5"
    found = _only(_check(tmp_path, language, edit=(old, old.replace("5", '"5"'))))
    assert (found.rule, found.pointer) == ("cases", "/cases/1/inputs/limit")
    assert found.message == (
        "case 'story.long' sets 'limit' to a value that is not of type integer, as the input "
        "is declared"
    )
    assert found.hint == "Give a value of type integer."


def test_only_yaml_is_told_to_quote_a_string(tmp_path: Path) -> None:
    yaml_hint = _only(_check(tmp_path, "yaml", edit=("{text: hello}", "{text: 1.5}"))).hint
    assert yaml_hint == (
        "Give a value of type string. In YAML, quote a string that reads as a number or a boolean."
    )
    star = _only(_check(tmp_path, "starlark", edit=('{"text": "hello"}', '{"text": 1.5}')))
    assert star.hint == "Give a value of type string."


def test_a_case_name_given_twice_is_reported_at_the_second(tmp_path: Path) -> None:
    found = _only(_check(tmp_path, "yaml", edit=("name: story.long", "name: hello")))
    assert (found.rule, found.pointer) == ("cases", "/cases/1/name")
    assert found.message == "the case name 'hello' is already used by cases[0]"
    assert found.hint == "Rename this case, say to 'hello_2': every case needs its own name."


def test_a_bad_case_name_and_an_unknown_field_are_schema_errors(tmp_path: Path) -> None:
    found = _check(
        tmp_path, "yaml", edit=("  - name: hello\n    inputs:", "  - name: -hello\n    input:")
    )
    assert [(d.rule, d.pointer) for d in found.diagnostics] == [
        ("schema", "/cases/0"),
        ("schema", "/cases/0/name"),
        ("schema", "/cases/0/input"),
    ]
    assert found.diagnostics[1].message == '"-hello" is not valid for cases[0].name'


@pytest.mark.parametrize(
    ("metric", "rule", "message"),
    [
        (
            "outputs.write |",
            "expressions",
            "the expression does not compile: unexpected end of template",
        ),
        (
            "outputs.wrte | length",
            "references",
            "the expression reads outputs.wrte, but no node has the id 'wrte'",
        ),
        (
            "inputs.limt * 2",
            "expressions",
            "the expression reads inputs.limt, which is not declared",
        ),
    ],
)
def test_a_metric_is_checked_as_a_tests_expectation_is(
    tmp_path: Path, metric: str, rule: str, message: str
) -> None:
    found = _only(
        _check(tmp_path, "yaml", edit=('"200 - (outputs.write | length)"', f'"{metric}"'))
    )
    assert (found.rule, found.pointer) == (rule, "/metric")
    assert found.message.startswith(message)
    assert (found.line, found.col) == (16, 9)


def test_validate_accepts_cases_and_refuses_a_bad_one_with_its_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "summarize.yaml"
    path.write_text(YAML, encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    assert "1 file valid" in capsys.readouterr().out
    bad = YAML.replace("{text: a long story, limit: 5}", "{limit: 5}")
    path.write_text(bad, encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    line, col = position(bad, "{limit: 5}")
    assert (
        f"{path}:{line}:{col}: [cases] case 'story.long' does not set the input 'text', which "
        "has no default (at /cases/1/inputs)"
    ) in out
    assert "Traceback" not in out
