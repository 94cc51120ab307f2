"""Lessons applied to compiled workflows: each kind, each refusal, literal text, stable order."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runner import ir
from runner.canonical import canonical_json
from runner.compiler.build import to_document
from runner.compiler.pipeline import compile_document, compile_file
from runner.compiler.source import Document
from runner.config import DEFAULT
from runner.executor.calls import RetryPolicy, chat
from runner.executor.engine import Engine
from runner.learning.apply import applied_digest, apply, check
from runner.learning.lessons import Lesson, parse_lesson
from runner.providers.base import ModelReply, ModelRequest
from runner.providers.mock import MockProvider
from runner.render import Scope, render, resolve_inputs
from runner.status import Status
from runner.tree import walk

ROOT = Path(__file__).resolve().parents[2]

SMALL = """\
version: 1
name: lessons
inputs: {topic: {type: string, default: rain}}
roles: {writer: {}, judge: {}, critic: {}}
budget: {leaves: 13}
steps:
  kind: sequence
  id: main
  steps:
    - kind: leaf
      id: draft
      role: writer
      prompt: |
        Draft {{ inputs.topic }}.{% if inputs.topic %} Mind the topic.{% endif -%}
    - kind: leaf
      id: talk
      role: writer
      messages:
        - {role: system, content: You write.}
        - {role: user, content: First.}
        - {role: assistant, content: Ok.}
        - {role: user, content: "Then {{ outputs.draft }}."}
    - kind: tournament
      id: best
      count: 3
      min_successes: 3
      body: {kind: leaf, id: take, role: writer, prompt: "Take {{ sample }}.\\n"}
      judge: {role: judge, prompt: "Score {{ candidate }}."}
    - kind: tournament
      id: scored
      candidates:
        - {kind: leaf, id: short, role: critic, prompt: Short.}
        - {kind: leaf, id: long, role: critic, prompt: Long.}
      score: candidate | length
    - {kind: leaf, id: quiet, role: critic, messages: [{role: system, content: Hush.}]}
    - {kind: reduce, id: total, inputs: [draft], expr: outputs.draft | length}
tests:
  - {name: drafted, expect: outputs.draft | length > 0}
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> ir.Workflow:
    path = tmp_path_factory.mktemp("wf") / "lessons.yaml"
    path.write_text(SMALL, encoding="utf-8")
    return compile_file(str(path))


@functools.cache
def example(name: str) -> ir.Workflow:
    return compile_file(str(ROOT / "workflows" / name))


def lesson(kind: str, target: str, content: dict[str, Any], ident: str | None = None) -> Lesson:
    data = {
        "id": ident or f"{kind.replace('_', '-')}-1",
        "kind": kind,
        "target": target,
        "content": content,
        "rationale": "It helps.",
        "evidence": [{"run": "20261204-101500-abc123", "node": "main/draft"}],
    }
    return parse_lesson(data, "test")


def node(workflow: ir.Workflow, name: str) -> Any:
    [found] = [v.node for v in walk(workflow.steps) if v.node.id == name]
    return found


def rendered(leaf: ir.Leaf, **outputs: Any) -> list[tuple[str, str]]:
    """The leaf's messages as the executor renders them."""
    scope = Scope(inputs={"topic": "rain"}, outputs=outputs, variables={"sample": 0})
    return [(m.role, m.content) for m in chat(leaf, lambda t: render(t, scope))]


def applied_one(workflow: ir.Workflow, one: Lesson) -> ir.Workflow:
    result = apply(workflow, [one])
    assert result.rejected == (), result.rejected
    assert result.applied == (one.id,)
    return result.workflow


def recompiled(workflow: ir.Workflow) -> ir.Workflow:
    """The workflow's document through the whole compiler again: schema and semantic checks."""
    document = Document(path=workflow.source, data=to_document(workflow), language="json")
    return compile_document(document)


# -- every kind ---------------------------------------------------------------------------------


def test_a_note_for_a_role_reaches_every_leaf_it_plays_and_no_other() -> None:
    workflow = example("pr_triage.yaml")
    note = lesson("note", "role:analyst", {"text": "Cite the file and line of every claim."})
    after = applied_one(workflow, note)
    analysts = [v.node for v in walk(after.steps) if v.node.kind == "leaf"]
    touched = {leaf.id for leaf in analysts if leaf.messages is not None}
    assert touched == {"risk", "test_gaps", "docs_gaps"}
    for name in touched:
        leaf = node(after, name)
        assert leaf.messages[0] == ir.Message(
            role="system", content="Cite the file and line of every claim."
        )
        assert leaf.messages[1] == ir.Message(role="user", content=node(workflow, name).prompt)
    assert recompiled(after).steps == after.steps


def test_a_note_for_a_leaf_goes_after_its_system_messages(small: ir.Workflow) -> None:
    after = applied_one(small, lesson("note", "node:talk", {"text": "Be kind."}))
    assert rendered(node(after, "talk"), draft="d") == [
        ("system", "You write."),
        ("system", "Be kind."),
        ("user", "First."),
        ("assistant", "Ok."),
        ("user", "Then d."),
    ]
    assert node(after, "draft") is node(small, "draft")


def test_an_example_goes_before_the_final_user_message(small: ir.Workflow) -> None:
    shot = lesson("example", "role:writer", {"user": "Draft snow.", "assistant": "Snow falls."})
    after = applied_one(small, shot)
    assert rendered(node(after, "draft")) == [
        ("user", "Draft snow."),
        ("assistant", "Snow falls."),
        ("user", "Draft rain. Mind the topic."),
    ]
    assert rendered(node(after, "talk"), draft="d")[3:] == [
        ("user", "Draft snow."),
        ("assistant", "Snow falls."),
        ("user", "Then d."),
    ]
    assert rendered(node(after, "take"))[-1] == ("user", "Take 0.")


def test_an_example_on_a_workflow_leaf_with_messages() -> None:
    workflow = example("test_failure_triage.yaml")
    shot = lesson("example", "node:failures", {"user": "log", "assistant": '{"tests": []}'})
    after = applied_one(workflow, shot)
    roles = [m.role for m in node(after, "failures").messages]
    assert roles == ["system", "user", "assistant", "user"]
    scope = Scope(inputs={}, outputs={"suite": {"exit_code": 1, "stdout": "o", "stderr": "e"}})
    sent = chat(node(after, "failures"), lambda t: render(t, scope))
    assert (sent[1].content, sent[2].content) == ("log", '{"tests": []}')
    recompiled(after)


def test_a_prompt_patch_appends_prepends_or_replaces(small: ir.Workflow) -> None:
    before = rendered(node(small, "draft"))[0][1]
    assert before == "Draft rain. Mind the topic."
    cases = {
        "append": {"op": "append", "text": "Use one line."},
        "prepend": {"op": "prepend", "text": "You are terse."},
        "replace": {"op": "replace", "find": "Mind the topic.", "text": "Stay on it."},
    }
    expected = {
        "append": before + "\n\nUse one line.",
        "prepend": "You are terse.\n\n" + before,
        "replace": "Draft rain. Stay on it.",
    }
    for op, content in cases.items():
        after = applied_one(small, lesson("prompt_patch", "node:draft", content))
        assert rendered(node(after, "draft")) == [("user", expected[op])], op
        recompiled(after)


def test_text_appended_to_a_prompt_that_ends_in_a_newline_follows_what_it_rendered(
    small: ir.Workflow,
) -> None:
    # Jinja drops a template's final newline; once text follows, it would print it.
    assert rendered(node(small, "take")) == [("user", "Take 0.")]
    patch = lesson("prompt_patch", "node:take", {"op": "append", "text": "Once."})
    assert rendered(node(applied_one(small, patch), "take")) == [("user", "Take 0.\n\nOnce.")]


def test_a_prompt_patch_of_a_leaf_with_messages_patches_its_last_user_message(
    small: ir.Workflow,
) -> None:
    patch = lesson("prompt_patch", "node:talk", {"op": "append", "text": "Briefly."})
    after = applied_one(small, patch)
    assert rendered(node(after, "talk"), draft="d")[-1] == ("user", "Then d.\n\nBriefly.")
    assert rendered(node(after, "talk"), draft="d")[1] == ("user", "First.")


def test_a_prompt_patch_of_a_tournament_patches_its_judge() -> None:
    workflow = example("rlm_cache_change.star")
    patch = lesson(
        "prompt_patch", "node:best_summary", {"op": "prepend", "text": "Punish vague words."}
    )
    after = applied_one(workflow, patch)
    judge = node(after, "best_summary").judge
    scope = Scope(inputs={}, outputs={}, variables={"candidate": "C"})
    assert render(judge.prompt, scope).startswith("Punish vague words.\n\nScore this pull-request")
    assert render(judge.prompt, scope).endswith("\n\nC")
    assert node(after, "summary_draft") is node(workflow, "summary_draft")


def test_a_parameter_sets_a_leafs_temperature_or_max_tokens(small: ir.Workflow) -> None:
    hot = applied_one(small, lesson("parameter", "node:draft", {"name": "temperature", "value": 0}))
    assert node(hot, "draft").temperature == 0
    long = applied_one(small, lesson("parameter", "node:talk", {"name": "max_tokens", "value": 64}))
    assert node(long, "talk").max_tokens == 64
    assert node(long, "talk").temperature is None


def test_a_parameter_sets_a_contests_count_within_its_bounds() -> None:
    workflow = example("dependency_upgrade.yaml")
    after = applied_one(workflow, lesson("parameter", "node:plans", {"name": "count", "value": 4}))
    assert node(after, "plans").count == 4
    assert recompiled(after).steps == after.steps


def test_a_test_lesson_adds_a_workflow_test() -> None:
    workflow = example("docs_sync.star")
    expect = "outputs.update_pages is defined"
    content = {"name": "pages listed", "expect": expect, "description": "d"}
    after = applied_one(workflow, lesson("test", "workflow", content))
    assert after.tests is not None
    assert workflow.tests is not None
    assert after.tests[:-1] == workflow.tests
    assert after.tests[-1] == ir.Test(name="pages listed", expect=expect, description="d")
    recompiled(after)


# -- refusals -----------------------------------------------------------------------------------

REFUSALS: dict[str, tuple[str, str, dict[str, Any], str]] = {
    "missing node": ("note", "node:drat", {"text": "x"}, "node 'drat' does not exist"),
    "missing role": ("note", "role:writr", {"text": "x"}, "role 'writr' is not declared"),
    "role without leaves": (
        "example",
        "role:judge",
        {"user": "u", "assistant": "a"},
        "role 'judge' plays no leaf; an example needs a leaf to go to",
    ),
    "note on a reduce": ("note", "node:total", {"text": "x"}, "node 'total' is a reduce"),
    "patch of a reduce": (
        "prompt_patch",
        "node:total",
        {"op": "append", "text": "x"},
        "node 'total' is a reduce; a prompt_patch needs a leaf or a judge's prompt",
    ),
    "patch of a scored tournament": (
        "prompt_patch",
        "node:scored",
        {"op": "append", "text": "x"},
        "tournament 'scored' scores with an expression, not a judge",
    ),
    "replace finds nothing": (
        "prompt_patch",
        "node:draft",
        {"op": "replace", "find": "abc", "text": "x"},
        "replace finds no 'abc' in the prompt of 'draft'",
    ),
    "replace inside a tag": (
        "prompt_patch",
        "node:draft",
        {"op": "replace", "find": "inputs.topic }}", "text": "x"},
        "replace finds 'inputs.topic }}' inside the template syntax of the prompt of 'draft'",
    ),
    "replace inside an if": (
        "prompt_patch",
        "node:draft",
        {"op": "replace", "find": "if inputs", "text": "x"},
        "inside the template syntax of the prompt of 'draft'; give a piece of its plain text",
    ),
    "replace in plain text and in a tag": (
        "prompt_patch",
        "node:draft",
        {"op": "replace", "find": "topic", "text": "x"},
        "replace finds 'topic' inside the template syntax of the prompt of 'draft'",
    ),
    "example without a user message": (
        "example",
        "node:quiet",
        {"user": "u", "assistant": "a"},
        "leaf 'quiet' has no user message to put an example before",
    ),
    "patch without a user message": (
        "prompt_patch",
        "node:quiet",
        {"op": "append", "text": "x"},
        "leaf 'quiet' has no user message to patch",
    ),
    "count of a leaf": (
        "parameter",
        "node:draft",
        {"name": "count", "value": 3},
        "parameter count applies to a tournament or pareto node",
    ),
    "temperature of a tournament": (
        "parameter",
        "node:best",
        {"name": "temperature", "value": 1},
        "parameter temperature applies to a leaf",
    ),
    "count of explicit candidates": (
        "parameter",
        "node:scored",
        {"name": "count", "value": 3},
        "tournament 'scored' has explicit candidates",
    ),
    "count over the budget": (
        "parameter",
        "node:best",
        {"name": "count", "value": 5},
        "count 5 for tournament 'best' does not fit the workflow: the workflow can launch up to "
        "15 model calls",
    ),
    "count under min_successes": (
        "parameter",
        "node:best",
        {"name": "count", "value": 2},
        "tournament 'best' asks for min_successes 3, more than its count 2",
    ),
    "test that does not compile": (
        "test",
        "workflow",
        {"name": "t", "expect": "outputs.draft |"},
        "test expression does not compile: ",
    ),
    "test that exists": (
        "test",
        "workflow",
        {"name": "drafted", "expect": "true"},
        "a test named 'drafted' already exists",
    ),
    "test of an unknown node": (
        "test",
        "workflow",
        {"name": "t", "expect": "outputs.nothing == 1"},
        "test 't' does not fit the workflow: the expression reads outputs.nothing, but no node",
    ),
    "test of a sampled candidate": (
        "test",
        "workflow",
        {"name": "t", "expect": "outputs.take == 1"},
        "the expression reads outputs.take, but 'take' is a sampled candidate",
    ),
    "test of a loop variable": (
        "test",
        "workflow",
        {"name": "t", "expect": "candidate == 1"},
        "reads 'candidate', which is not defined here",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_lesson_that_does_not_fit_is_refused_with_its_reason(
    small: ir.Workflow, case: str
) -> None:
    kind, target, content, reason = REFUSALS[case]
    one = lesson(kind, target, content)
    assert reason in (check(small, one) or ""), check(small, one)
    result = apply(small, [one])
    assert result.workflow is small
    assert result.applied == ()
    assert result.rejected == ((one.id, check(small, one)),)


def test_content_that_does_not_fit_its_kind_is_refused(small: ir.Workflow) -> None:
    good = lesson("note", "node:draft", {"text": "x"})
    mixed = Lesson(
        id="mixed",
        kind="parameter",
        target="node:draft",
        content=good.content,
        rationale="r",
        evidence=good.evidence,
    )
    assert "fits none of its forms" in (check(small, mixed) or "")


def test_two_lessons_with_one_id_apply_once(small: ir.Workflow) -> None:
    first = lesson("note", "node:draft", {"text": "a"}, ident="same")
    second = lesson("note", "node:draft", {"text": "b"}, ident="same")
    result = apply(small, [second, first])
    assert result.applied == ("same",)
    assert result.rejected == (("same", "another lesson has the id 'same'"),)
    assert result == apply(small, [first, second])


# -- literal text -------------------------------------------------------------------------------

HOSTILE = [
    "{{ inputs.topic }}",
    "{% raw %}x{% endraw %}",
    "{% endraw %} and {{",
    "{# not a comment #} {%- if true -%}",
    "quotes \" ' and \\ backslashes \\n \\x41",
    "CR\r and CRLF\r\n lines",
    "ends in a newline\n",
    "\n",
    "tabs\t, NUL \x00, é, 😀, \u2028",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_the_text_a_lesson_adds_reaches_the_model_as_written(small: ir.Workflow, text: str) -> None:
    lessons = [
        lesson("note", "node:draft", {"text": text}, ident="a-note"),
        lesson("example", "node:draft", {"user": text, "assistant": text}, ident="b-example"),
        lesson("prompt_patch", "node:draft", {"op": "append", "text": text}, ident="c-append"),
        lesson("prompt_patch", "node:draft", {"op": "prepend", "text": text}, ident="d-prepend"),
        lesson(
            "prompt_patch",
            "node:talk",
            {"op": "replace", "find": "Then", "text": text},
            ident="e-replace",
        ),
    ]
    result = apply(small, lessons)
    assert result.rejected == ()
    base = "Draft rain. Mind the topic."
    assert rendered(node(result.workflow, "draft")) == [
        ("system", text),
        ("user", text),
        ("assistant", text),
        ("user", f"{text}\n\n{base}\n\n{text}"),
    ]
    assert rendered(node(result.workflow, "talk"), draft="d")[-1] == ("user", f"{text} d.")
    recompiled(result.workflow)


def test_a_judges_patched_prompt_renders_its_text_as_written(small: ir.Workflow) -> None:
    text = "{{ candidate }} is {% raw %}"
    patch = lesson("prompt_patch", "node:best", {"op": "append", "text": text})
    judge = node(applied_one(small, patch), "best").judge
    scope = Scope(inputs={}, outputs={}, variables={"candidate": "C"})
    assert render(judge.prompt, scope) == f"Score C.\n\n{text}"


# -- order, identity, digest ---------------------------------------------------------------------


def mixed_lessons() -> list[Lesson]:
    return [
        lesson("note", "role:writer", {"text": "Be terse."}, ident="n1"),
        lesson("note", "node:draft", {"text": "Mind {{ this }}."}, ident="n2"),
        lesson("example", "node:draft", {"user": "u", "assistant": "a"}, ident="e1"),
        lesson("prompt_patch", "node:draft", {"op": "append", "text": "More."}, ident="p1"),
        lesson(
            "prompt_patch",
            "node:draft",
            {"op": "replace", "find": "Draft", "text": "Write"},
            ident="p2",
        ),
        lesson("parameter", "node:best", {"name": "count", "value": 4}, ident="c1"),
        lesson("test", "workflow", {"name": "t2", "expect": "outputs.total > 0"}, ident="t1"),
        lesson("note", "node:nothing", {"text": "x"}, ident="zz"),
    ]


def test_one_set_of_lessons_gives_one_workflow_whatever_its_order(small: ir.Workflow) -> None:
    lessons = mixed_lessons()
    forward = apply(small, lessons)
    assert forward.applied == ("c1", "e1", "n1", "n2", "p1", "p2", "t1")
    assert forward.rejected == (("zz", "node 'nothing' does not exist"),)
    for order in (lessons[::-1], lessons[3:] + lessons[:3], sorted(lessons, key=lambda x: x.kind)):
        again = apply(small, order)
        assert again == forward
        assert canonical_json(to_document(again.workflow)) == canonical_json(
            to_document(forward.workflow)
        )
    # Each lesson applies to what the ones before it made.
    assert rendered(node(forward.workflow, "draft"))[-1] == (
        "user",
        "Write rain. Mind the topic.\n\nMore.",
    )
    assert (
        forward.workflow.hash
        == hashlib.sha256(canonical_json(to_document(forward.workflow)).encode()).hexdigest()
    )
    assert recompiled(forward.workflow).steps == forward.workflow.steps


def test_no_lessons_leave_the_workflow_as_it_is_and_the_input_is_never_changed(
    small: ir.Workflow,
) -> None:
    before = canonical_json(to_document(small))
    assert apply(small, []).workflow is small
    assert apply(small, []) == apply(small, ())
    apply(small, mixed_lessons())
    assert canonical_json(to_document(small)) == before
    assert dataclasses.replace(recompiled(small), source=small.source) == small


def test_the_digest_is_the_hash_of_the_applied_lessons_whatever_their_order() -> None:
    lessons = mixed_lessons()[:3]
    digest = applied_digest(lessons)
    assert digest == applied_digest(lessons[::-1])
    ordered = sorted(lessons, key=lambda x: x.id)
    text = canonical_json([x.to_json() for x in ordered])
    assert digest == hashlib.sha256(text.encode()).hexdigest()
    assert digest != applied_digest(lessons[:2])
    assert applied_digest([]) == hashlib.sha256(b"[]").hexdigest()


# -- a run of the applied workflow ---------------------------------------------------------------


class Recording:
    """The provider seam, instrumented: the real mock answers, the requests are kept."""

    retries_transient = False

    def __init__(self) -> None:
        self.inner = MockProvider("mock")
        self.name = self.inner.name
        self.endpoint = self.inner.endpoint
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> ModelReply:
        self.requests.append(request)
        return await self.inner.complete(request)


def test_a_run_of_the_applied_workflow_sends_the_note_and_the_example(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            version: 1
            name: taught
            roles: {writer: {}}
            steps:
              kind: sequence
              id: main
              steps:
                - {kind: leaf, id: draft, role: writer, prompt: "Draft."}
                - {kind: leaf, id: polish, role: writer, prompt: "Polish {{ outputs.draft }}."}
            """
        ),
        encoding="utf-8",
    )
    workflow = compile_file(str(path))
    lessons = [
        lesson("note", "role:writer", {"text": "Write {{ plainly }}."}, ident="plain"),
        lesson("example", "node:polish", {"user": "Polish a.", "assistant": "A."}, ident="shot"),
    ]
    applied = apply(workflow, lessons)
    provider = Recording()
    engine = Engine(
        applied.workflow,
        config=DEFAULT,
        providers={provider.name: provider},
        workspace=tmp_path,
        retry_policy=RetryPolicy(base_s=0.001),
    )
    result = asyncio.run(engine.run(resolve_inputs(applied.workflow, {})))
    assert result.status is Status.SUCCEEDED, result.reason
    sent = {r.node_id: [(m.role, m.content) for m in r.messages] for r in provider.requests}
    draft = result.outputs["draft"]
    assert sent == {
        "draft": [("system", "Write {{ plainly }}."), ("user", "Draft.")],
        "polish": [
            ("system", "Write {{ plainly }}."),
            ("user", "Polish a."),
            ("assistant", "A."),
            ("user", f"Polish {draft}."),
        ],
    }
    assert result.workflow_hash == applied.workflow.hash != workflow.hash
