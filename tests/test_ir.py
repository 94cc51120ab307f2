"""The IR: frozen, hashed over canonical JSON, and a lossless round trip of the document."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from runner import ir
from runner.canonical import canonical_json, content_hash
from runner.compiler.build import build_node, node_to_document, to_document
from runner.compiler.pipeline import check_file, discover, load_source
from runner.tree import walk

WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"
EXAMPLES = [
    path for path in discover([str(WORKFLOWS)]) if check_file(path, lenient=True).kind == "workflow"
]


def test_instance_ids() -> None:
    assert ir.instance_id("review_one", (3,)) == "review_one[3]"
    assert ir.instance_id("fix", (1, 0)) == "fix[1][0]"
    assert ir.instance_id("main", ()) == "main"


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": [1, {"d": 2, "c": "é"}], "a": None}) == (
        '{"a":null,"b":[1,{"c":"é","d":2}]}'
    )
    assert content_hash({"a": 1, "b": 2}) == content_hash({"b": 2, "a": 1})


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).name)
def test_examples_round_trip_losslessly(path: str) -> None:
    checked = check_file(path)
    assert checked.diagnostics == ()
    workflow = checked.workflow
    assert workflow is not None
    document = load_source(path)
    assert document is not None
    assert to_document(workflow) == document.data
    assert workflow.hash == content_hash(document.data)
    again = check_file(path).workflow
    assert again is not None
    assert again.hash == workflow.hash


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: Path(p).name)
def test_every_node_round_trips_on_its_own(path: str) -> None:
    workflow = check_file(path).workflow
    assert workflow is not None
    for visit in walk(workflow.steps):
        assert build_node(node_to_document(visit.node)) == visit.node


def test_ir_is_frozen() -> None:
    workflow = check_file(EXAMPLES[0]).workflow
    assert workflow is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        workflow.name = "other"  # type: ignore[misc]


def test_examples_cover_every_node_kind_in_both_languages() -> None:
    kinds: dict[str, set[str]] = {"yaml": set(), "starlark": set()}
    for path in EXAMPLES:
        workflow = check_file(path).workflow
        assert workflow is not None
        language = "starlark" if path.endswith(".star") else "yaml"
        kinds[language] |= {visit.node.kind for visit in walk(workflow.steps)}
    assert kinds["yaml"] | kinds["starlark"] == set(ir.NODE_TYPES)
    assert kinds["yaml"]
    assert kinds["starlark"]
