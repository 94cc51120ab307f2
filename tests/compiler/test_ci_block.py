"""The ``ci`` block (the inputs and mock script ``branchleaf ci`` runs a workflow with), written in
YAML and in Starlark: it compiles to the IR and back, and its mistakes are reported where they
are, with a fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import position, rendered

from runner.canonical import content_hash
from runner.compiler.build import to_document
from runner.compiler.pipeline import Checked, check_file
from runner.errors import Diagnostic

YAML = """\
version: 1
name: notes
inputs:
  since: {type: string, default: v0.1.0}
  files: {type: array, default: [a.py]}
roles:
  writer: {}
steps:
  kind: leaf
  id: write
  role: writer
  prompt: "Notes since {{ inputs.since }} for {{ inputs.files | join(', ') }}."
ci:
  inputs:
    since: HEAD~5
    files: [b.py, c.py]
  mock_script: mocks/notes.yaml
"""

STAR = """\
workflow(
    name = "notes",
    inputs = {
        "since": {"type": "string", "default": "v0.1.0"},
        "files": {"type": "array", "default": ["a.py"]},
    },
    roles = {"writer": {}},
    steps = leaf(
        id = "write",
        role = "writer",
        prompt = "Notes since {{ inputs.since }} for {{ inputs.files | join(', ') }}.",
    ),
    ci = {
        "inputs": {"since": "HEAD~5", "files": ["b.py", "c.py"]},
        "mock_script": "mocks/notes.yaml",
    },
)
"""

SOURCES = {"yaml": ("notes.yaml", YAML), "starlark": ("notes.star", STAR)}


def _check(
    root: Path, language: str, *, edit: tuple[str, str] = ("", ""), mock: bool = True
) -> Checked:
    """Write the workflow under ``root/flows`` (with ``edit`` applied) and, when ``mock``, its
    mock script; check the workflow."""
    name, text = SOURCES[language]
    old, new = edit
    path = root / "flows" / name
    path.parent.mkdir(parents=True)
    path.write_text(text.replace(old, new), encoding="utf-8")
    if mock:
        (path.parent / "mocks").mkdir()
        (path.parent / "mocks" / "notes.yaml").write_text("nodes: {}\n", encoding="utf-8")
    return check_file(str(path))


def _only(checked: Checked) -> Diagnostic:
    assert len(checked.diagnostics) == 1, rendered(checked)
    return checked.diagnostics[0]


@pytest.mark.parametrize("language", SOURCES)
def test_the_block_compiles_to_the_ir_and_back(tmp_path: Path, language: str) -> None:
    checked = _check(tmp_path, language)
    assert checked.diagnostics == ()
    workflow = checked.workflow
    assert workflow is not None
    assert workflow.ci is not None
    assert workflow.ci.mock_script == "mocks/notes.yaml"
    assert dict(workflow.ci.inputs) == {"since": "HEAD~5", "files": ("b.py", "c.py")}
    document = to_document(workflow)
    assert document["ci"] == {
        "inputs": {"since": "HEAD~5", "files": ["b.py", "c.py"]},
        "mock_script": "mocks/notes.yaml",
    }
    # The block is part of the document, so of its hash (which trace files check).
    assert workflow.hash == content_hash(document)


def test_both_languages_give_the_same_document(tmp_path: Path) -> None:
    from_yaml = _check(tmp_path / "yaml", "yaml").workflow
    from_starlark = _check(tmp_path / "starlark", "starlark").workflow
    assert from_yaml is not None
    assert from_starlark is not None
    assert to_document(from_yaml) == to_document(from_starlark)
    assert from_yaml.hash == from_starlark.hash


@pytest.mark.parametrize("language", SOURCES)
def test_an_undeclared_input_is_named_with_a_guess(tmp_path: Path, language: str) -> None:
    old, new = (
        ('"since": "HEAD', '"sinse": "HEAD') if language == "starlark" else ("since: H", "sinse: H")
    )
    found = _only(_check(tmp_path, language, edit=(old, new)))
    assert (found.rule, found.pointer) == ("ci", "/ci/inputs/sinse")
    assert found.message == "ci.inputs sets 'sinse', which is not an input of the workflow"
    assert found.hint == (
        "Declare it under inputs, or take it out of ci.inputs (declared: since, files). "
        "Did you mean 'since'?"
    )
    if language == "yaml":
        assert (found.line, found.col) == position(YAML.replace(old, new), "HEAD~5")
    else:  # Starlark places it at the workflow(...) call that built the block
        assert (found.line, found.col) == (1, 1)


@pytest.mark.parametrize("language", SOURCES)
def test_a_value_of_the_wrong_type_is_reported(tmp_path: Path, language: str) -> None:
    old = '["b.py", "c.py"]' if language == "starlark" else "[b.py, c.py]"
    found = _only(_check(tmp_path, language, edit=(old, '"b.py"')))
    assert (found.rule, found.pointer) == ("ci", "/ci/inputs/files")
    assert found.message == "ci.inputs.files is not of type array, as the input 'files' is declared"
    assert found.hint == "Give a value of type array."


@pytest.mark.parametrize("language", SOURCES)
def test_a_missing_mock_script_says_where_it_was_looked_for(tmp_path: Path, language: str) -> None:
    found = _only(_check(tmp_path, language, mock=False))
    folder = (tmp_path / "flows").as_posix()
    assert (found.rule, found.pointer) == ("ci", "/ci/mock_script")
    assert found.message == (
        f"ci.mock_script 'mocks/notes.yaml' names {folder}/mocks/notes.yaml, which does not exist"
    )
    assert found.hint == (
        f"Give the mock script's path relative to the workflow's folder ({folder}/), "
        "or create the file."
    )
    assert found.file == str(tmp_path / "flows" / SOURCES[language][0])
    if language == "yaml":
        assert (found.line, found.col) == position(YAML, "mocks/notes.yaml")


def test_a_misspelt_mock_script_gets_a_guess(tmp_path: Path) -> None:
    found = _only(_check(tmp_path, "yaml", edit=("mocks/notes.yaml", "mock/notes.yaml")))
    assert found.hint is not None
    assert found.hint.endswith("Did you mean 'mocks/notes.yaml'?")


def test_an_unknown_field_in_the_block_is_a_schema_error(tmp_path: Path) -> None:
    found = _only(_check(tmp_path, "yaml", edit=("  mock_script:", "  mock_scrip:")))
    assert (found.rule, found.pointer) == ("schema", "/ci/mock_scrip")
    assert "unknown field 'mock_scrip'" in found.message
