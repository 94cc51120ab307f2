"""Lessons: their schema, reading one with a clear error, and the teacher's reply shape."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from runner.compiler.schema import workflow_schema
from runner.errors import ConfigError
from runner.executor.kinds import TEACHER_BRIEF
from runner.learning.lessons import (
    KINDS,
    TARGET_FORMS,
    TEACHER_REPLY_SCHEMA,
    Evidence,
    Lesson,
    Note,
    lesson_schema,
    parse_lesson,
    problem,
)
from runner.providers.instances import instance

EVIDENCE = [{"run": "20261204-101500-abc123", "node": "main/draft", "event": "node_finished"}]

GOOD: dict[str, dict[str, Any]] = {
    "note": {"target": "role:writer", "content": {"text": "Answer in one sentence."}},
    "prompt_patch": {"target": "node:draft", "content": {"op": "append", "text": "Be brief."}},
    "replace": {
        "kind": "prompt_patch",
        "target": "node:draft",
        "content": {"op": "replace", "find": "Draft.", "text": ""},
    },
    "example": {"target": "node:draft", "content": {"user": "Draft a.", "assistant": "A."}},
    "parameter": {"target": "node:draft", "content": {"name": "temperature", "value": 0.2}},
    "count": {
        "kind": "parameter",
        "target": "node:best",
        "content": {"name": "count", "value": 4},
    },
    "test": {
        "target": "workflow",
        "content": {"name": "drafted", "expect": "outputs.draft | length > 0"},
    },
}


def lesson_data(name: str, **changes: Any) -> dict[str, Any]:
    spec = GOOD[name]
    data = {
        "id": f"lesson-{name}",
        "kind": spec.get("kind", name),
        "target": spec["target"],
        "content": copy.deepcopy(spec["content"]),
        "rationale": "The drafts rambled.",
        "evidence": copy.deepcopy(EVIDENCE),
    }
    data.update(changes)
    return data


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_lesson_of_every_kind_reads_and_writes_back_the_same_json(name: str) -> None:
    data = lesson_data(name)
    lesson = parse_lesson(data, "lessons/x.yaml")
    assert lesson.kind == data["kind"]
    assert lesson.to_json() == data
    assert Draft202012Validator(lesson_schema()).is_valid(data)


def test_a_whole_number_given_as_a_float_is_read_as_an_integer() -> None:
    data = lesson_data("count", content={"name": "count", "value": 4.0})
    assert parse_lesson(data, "here").to_json()["content"] == {"name": "count", "value": 4}


BAD: dict[str, tuple[Any, str]] = {
    "not an object": (["a"], "a lesson is a JSON object with id, kind, target"),
    "unknown kind": (
        lesson_data("note", kind="workflow_change"),
        "has the kind 'workflow_change'; give one of note, prompt_patch, example, parameter, test",
    ),
    "no kind": (
        {k: v for k, v in lesson_data("note").items() if k != "kind"},
        "the lesson 'lesson-note' has no kind",
    ),
    "bad id": (lesson_data("note", id="Fix JSON"), "the lesson id 'Fix JSON' is not a lesson id"),
    "long id": (lesson_data("note", id="a" * 65), "is not a lesson id; use 1 to 64"),
    "target of another kind": (
        lesson_data("prompt_patch", target="role:writer"),
        "the target 'role:writer' of the prompt_patch lesson 'lesson-prompt_patch' does not name "
        "what a prompt_patch changes; write node:<leaf id>",
    ),
    "test target": (lesson_data("test", target="node:draft"), "; write workflow"),
    "unknown op": (
        lesson_data("prompt_patch", content={"op": "insert", "text": "x"}),
        "fits none of its forms; give op 'append' or 'prepend' or 'replace'",
    ),
    "replace without find": (
        lesson_data("replace", content={"op": "replace", "text": "x"}),
        "has no 'find' at /content; add it",
    ),
    "content as text": (
        lesson_data("note", content="Be brief."),
        "at /content: 'Be brief.' is not of type 'object'",
    ),
    "empty note": (lesson_data("note", content={"text": ""}), "at /content/text"),
    "temperature too high": (
        lesson_data("parameter", content={"name": "temperature", "value": 3}),
        "at /content/value: 3 is greater than the maximum of 2",
    ),
    "fractional count": (
        lesson_data("count", content={"name": "count", "value": 2.5}),
        "at /content/value: 2.5 is not of type 'integer'",
    ),
    "count of one": (
        lesson_data("count", content={"name": "count", "value": 1}),
        "1 is less than the minimum of 2",
    ),
    "unknown parameter": (
        lesson_data("parameter", content={"name": "top_p", "value": 0.5}),
        "give name 'temperature' or 'max_tokens' or 'count'",
    ),
    "no evidence": (lesson_data("note", evidence=[]), "has no evidence; add at least one"),
    "evidence as text": (lesson_data("note", evidence=["draft"]), "at /evidence/0"),
    "bad event": (
        lesson_data("note", evidence=[{"run": "r", "node": "n", "event": -1}]),
        "has the evidence event -1 at /evidence/0/event; give the event's kind",
    ),
    "no rationale": (
        {k: v for k, v in lesson_data("note").items() if k != "rationale"},
        "the note lesson 'lesson-note' has no 'rationale'; add it",
    ),
    "extra field": (
        lesson_data("note", status="active"),
        "has the unknown field 'status'; remove it (the fields are content, evidence, id",
    ),
    "extra content field": (
        lesson_data("note", content={"text": "x", "role": "system"}),
        "has the unknown field 'role' at /content; remove it (the fields are text)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_data_that_is_not_a_lesson_is_one_clear_sentence(case: str) -> None:
    data, phrase = BAD[case]
    with pytest.raises(ConfigError) as raised:
        parse_lesson(data, "lessons/fix.yaml")
    message = str(raised.value)
    assert message.startswith("lessons/fix.yaml: "), message
    assert phrase in message, message
    assert "\n" not in message
    assert raised.value.exit_code == 2
    assert not Draft202012Validator(lesson_schema()).is_valid(data)


MUTATIONS = st.sampled_from(
    [
        ("id", "Bad Id"),
        ("id", 3),
        ("kind", "note"),
        ("kind", "test"),
        ("target", "workflow"),
        ("target", "role:writer"),
        ("target", "node:draft"),
        ("content", {"text": "x"}),
        ("content", {"op": "replace", "find": "a", "text": "b"}),
        ("content", {"name": "count", "value": 3}),
        ("content", {"name": "max_tokens", "value": 0}),
        ("content", {"user": "u", "assistant": "a"}),
        ("content", {"name": "t", "expect": "true", "description": "d"}),
        ("rationale", ""),
        ("evidence", [{"run": "r", "node": "n", "event": 2}]),
        ("evidence", [{"run": "r"}]),
        ("extra", 1),
    ]
)


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(sorted(GOOD)), st.lists(MUTATIONS, max_size=3))
def test_the_schema_and_parse_lesson_agree(name: str, changes: list[tuple[str, Any]]) -> None:
    data = lesson_data(name)
    for field, value in changes:
        data[field] = copy.deepcopy(value)
    valid = Draft202012Validator(lesson_schema()).is_valid(data)
    assert (problem(data) is None) == valid, (data, problem(data))


def test_parameter_ranges_are_the_workflow_schemas() -> None:
    defs = lesson_schema()["$defs"]
    forms = {
        b["properties"]["name"]["const"]: b
        for b in defs["parameter"]["properties"]["content"]["oneOf"]
    }
    workflow = workflow_schema()["$defs"]
    for name, owner in (("temperature", "leaf"), ("max_tokens", "leaf"), ("count", "tournament")):
        value = forms[name]["properties"]["value"]
        declared = workflow[owner]["properties"][name]
        for bound in ("type", "minimum", "maximum"):
            assert value.get(bound) == declared.get(bound), (name, bound)
    assert (
        workflow["pareto"]["properties"]["count"] == workflow["tournament"]["properties"]["count"]
    )


def test_the_teacher_reply_schema_holds_lessons_of_every_kind() -> None:
    Draft202012Validator.check_schema(TEACHER_REPLY_SCHEMA)
    reply = {"lessons": [lesson_data(name) for name in GOOD]}
    assert Draft202012Validator(TEACHER_REPLY_SCHEMA).is_valid(reply)
    bad = {"lessons": [lesson_data("note", kind="vibes")]}
    # The first error is the one a failed teacher node reports.
    error = next(iter(Draft202012Validator(TEACHER_REPLY_SCHEMA).iter_errors(bad)))
    assert list(error.absolute_path) == ["lessons", 0, "kind"]
    assert not Draft202012Validator(TEACHER_REPLY_SCHEMA).is_valid({"lessons": [], "more": 1})


def test_what_the_mock_proposes_is_read_as_lessons() -> None:
    kinds = set()
    for seed in range(40):
        reply = instance(TEACHER_REPLY_SCHEMA, seed.to_bytes(2, "big"))
        for index, data in enumerate(reply["lessons"]):
            lesson = parse_lesson(data, f"the reply at /lessons/{index}")
            kinds.add(lesson.kind)
    assert kinds == set(KINDS)


def test_the_teachers_brief_names_every_kind_and_target_form() -> None:
    brief = TEACHER_BRIEF.format(results="{}")
    for kind in KINDS:
        assert f"  {kind}: target " in brief
    for form in ('"role:<role name>"', '"node:<leaf id>"', '"node:<tournament id>"', '"workflow"'):
        assert form in brief
    assert set(TARGET_FORMS) == set(KINDS)


def test_a_lesson_names_its_target() -> None:
    lesson = Lesson(
        id="n",
        kind="note",
        target="role:writer",
        content=Note(text="x"),
        rationale="r",
        evidence=(Evidence(run="r", node="n"),),
    )
    assert (lesson.target_kind, lesson.target_name) == ("role", "writer")
    assert lesson.to_json()["evidence"] == [{"run": "r", "node": "n"}]
