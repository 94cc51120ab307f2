"""The mock provider: derived replies, mock scripts, and the errors of bad scripts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import position
from jsonschema import Draft202012Validator

from runner.compiler.schema import load_schema
from runner.errors import ConfigError
from runner.providers.base import ChatMessage, ChatRole, ModelReply, ModelRequest, ProviderError
from runner.providers.mock import MockProvider
from runner.providers.script import (
    MockScript,
    ScriptCase,
    ScriptEntry,
    When,
    load_script,
)

Write = Callable[[str, str], str]

REVIEW = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["ok", "score"],
    "additionalProperties": False,
}


def request(node: str = "review_one", prompt: str = "Review a.py", **fields: Any) -> ModelRequest:
    messages = (
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content=prompt),
    )
    return ModelRequest(node_id=node, role="reviewer", model=None, messages=messages, **fields)


def ask(provider: MockProvider, *requests: ModelRequest) -> list[ModelReply]:
    """Answer the requests one after another, in one event loop."""

    async def run() -> list[ModelReply]:
        return [await provider.complete(one) for one in requests]

    return asyncio.run(run())


def texts(provider: MockProvider, *requests: ModelRequest) -> list[str]:
    return [reply.text for reply in ask(provider, *requests)]


def failure(provider: MockProvider, one: ModelRequest) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        ask(provider, one)
    return caught.value


def scripted(write: Write, text: str) -> MockProvider:
    return MockProvider(script=load_script(write("script.yaml", text)))


# Replies without a script


def test_replies_are_the_same_across_providers_and_runs() -> None:
    first = ask(MockProvider(), request())[0]
    assert ask(MockProvider(), request())[0] == first
    assert first.text.startswith("mock reply ")
    assert first.model == "mock"
    assert first.finish_reason == "stop"


def test_anything_a_memo_key_covers_changes_the_reply() -> None:
    base = texts(MockProvider(), request())[0]
    variants = [
        request(sample=1),
        request(prompt="Review b.py"),
        request(temperature=0.5),
        request(max_tokens=10),
        request(output_schema={"type": "string"}),
    ]
    replies = texts(MockProvider(), *variants)
    assert base not in replies
    assert len(set(replies)) == len(variants)
    assert texts(MockProvider(name="other"), request()) != [base]


def test_the_node_id_and_role_do_not_change_the_reply() -> None:
    # A memo hit serves one node's reply to another; a fresh call must give the same text.
    assert texts(MockProvider(), request(node="a"), request(node="b[2]")) == texts(
        MockProvider(), request(), request()
    )


def test_structured_replies_are_valid_instances_of_the_output_schema() -> None:
    replies = texts(MockProvider(), *(request(sample=n, output_schema=REVIEW) for n in range(30)))
    for text in replies:
        assert Draft202012Validator(REVIEW).is_valid(json.loads(text))
    assert len(set(replies)) > 15  # varied, with few repeats among 30


def test_json_mode_without_a_schema_still_answers_json() -> None:
    assert "reply" in json.loads(texts(MockProvider(), request(json_mode=True))[0])


def test_usage_is_estimated_and_free() -> None:
    reply = ask(MockProvider(), request(prompt="x" * 40))[0]
    assert reply.usage.prompt_tokens == (len("Be brief.") + 40 + 3) // 4
    assert reply.usage.completion_tokens == (len(reply.text) + 3) // 4
    assert reply.usage.cost_usd == 0.0
    assert reply.usage.estimated


def test_an_unsatisfiable_schema_is_a_provider_error_that_is_not_retried() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 1}},
        "required": ["n"],
    }
    error = failure(MockProvider(), request(output_schema=schema))
    assert not error.retryable
    assert "/properties/n" in str(error)
    assert "review_one" in str(error)


def test_a_request_that_is_not_json_is_a_provider_error() -> None:
    assert not failure(MockProvider(), request(temperature=math.nan)).retryable


# Scripts


def test_a_script_reply_is_text_or_canonical_json(write: Write) -> None:
    provider = scripted(
        write,
        """\
        nodes:
          greet: {reply: hello}
          review_one: {reply: {score: 0.9, ok: true}}
        """,
    )
    assert texts(provider, request(node="greet"), request(node="greet")) == ["hello", "hello"]
    assert texts(provider, request()) == ['{"ok":true,"score":0.9}']


def test_replies_come_one_per_call_and_the_last_repeats(write: Write) -> None:
    provider = scripted(write, 'nodes: {"draft_*": {replies: [first, {n: 2}, third]}}')
    calls = [request(node="draft_a") for _ in range(5)]
    assert texts(provider, *calls) == ["first", '{"n":2}', "third", "third", "third"]


def test_each_matching_node_id_walks_its_own_sequence(write: Write) -> None:
    provider = scripted(write, 'nodes: {"review_one*": {replies: [one, two]}}')
    calls = [request(node=f"review_one[{i % 2}]") for i in range(4)]
    assert texts(provider, *calls) == ["one", "one", "two", "two"]


def test_errors_come_first_then_the_replies(write: Write) -> None:
    provider = scripted(write, "nodes: {flaky: {errors: [429, 500, timeout], reply: done}}")
    flaky = request(node="flaky")
    rate, server, timeout = (failure(provider, flaky) for _ in range(3))
    assert (rate.status, rate.retryable, rate.retry_after_s) == (429, True, 0)
    assert (server.status, server.retryable, server.retry_after_s) == (500, True, None)
    assert (timeout.status, timeout.retryable) == (None, True)
    assert "flaky" in str(rate)
    assert texts(provider, flaky, flaky) == ["done", "done"]


def test_errors_alone_are_followed_by_the_derived_reply(write: Write) -> None:
    provider = scripted(write, "nodes: {flaky: {errors: [503]}}")
    assert failure(provider, request(node="flaky")).status == 503
    assert texts(provider, request(node="flaky")) == texts(MockProvider(), request(node="flaky"))


def test_a_score_is_the_reply_as_text(write: Write) -> None:
    provider = scripted(write, 'nodes: {"judge*": {score: 0.75}, "other": {score: 7}}')
    assert texts(provider, request(node="judge[1]"), request(node="other")) == ["0.75", "7"]


def test_unmatched_nodes_get_the_derived_reply(write: Write) -> None:
    provider = scripted(write, "nodes: {other: {reply: x}}")
    assert texts(provider, request()) == texts(MockProvider(), request())


def test_globs_and_exact_ids_match_and_the_first_entry_wins(write: Write) -> None:
    provider = scripted(
        write,
        """\
        nodes:
          "review_one[3]": {reply: exact}
          "review_*": {reply: glob}
          "review_one[12]": {reply: never}
          "?eview": {reply: question}
        """,
    )
    nodes = ["review_one[3]", "review_one3", "review_one[12]", "review_two", "review", "x"]
    replies = texts(provider, *(request(node=node) for node in nodes))
    # `[3]` is a character class to fnmatch, so `review_one3` matches it too.
    assert replies[:5] == ["exact", "exact", "glob", "glob", "question"]
    assert replies[5].startswith("mock reply")


def test_latency_waits_without_blocking_the_loop(write: Write) -> None:
    provider = scripted(
        write,
        """\
        defaults: {latency_ms: 20}
        nodes:
          slow: {latency_ms: 60, reply: late}
          fast: {latency_ms: 0, reply: now}
        """,
    )

    async def run() -> tuple[float, float, float]:
        start = time.perf_counter()
        await asyncio.gather(*(provider.complete(request(node="slow")) for _ in range(20)))
        slow = time.perf_counter() - start
        start = time.perf_counter()
        await provider.complete(request(node="unlisted"))
        default = time.perf_counter() - start
        start = time.perf_counter()
        await provider.complete(request(node="fast"))
        return slow, default, time.perf_counter() - start

    slow, default, fast = asyncio.run(run())
    assert 0.06 <= slow < 0.06 * 10  # twenty calls wait side by side, not one after another
    assert default >= 0.02
    assert fast < 0.02


def test_scripts_built_in_code_work_like_files() -> None:
    script = MockScript(entries=(ScriptEntry(pattern="n*", replies=("a", "b")),))
    assert texts(MockProvider(script=script), request(node="n1"), request(node="n1")) == ["a", "b"]


# Answers by what the request contains, and by role


def asking(
    *messages: tuple[ChatRole, str], node: str = "locate", role: str = "locator"
) -> ModelRequest:
    """A request of ``node`` by ``role`` with the given (role, content) messages."""
    said = tuple(ChatMessage(role=who, content=text) for who, text in messages)
    return ModelRequest(node_id=node, role=role, model=None, messages=said)


CASES = """\
    nodes:
      locate:
        cases:
          - when: {prompt_contains: "Answer with the file name only"}
            reply: runner/cache.py
          - when: {system_contains: terse, user_contains: [cache, key]}
            reply: cache.py
          - when: {role: auditor}
            score: 3
          - reply: It is built in runner/cache.py.
      plain: {reply: as before}
      open:
        cases:
          - when: {user_contains: "?"}
            reply: asked
    """


def test_the_first_case_whose_when_holds_answers(write: Write) -> None:
    provider = scripted(write, CASES)
    note = "Answer with the file name only."
    calls = [
        asking(("system", note), ("user", "Which file builds the key?")),
        asking(("user", "Which file? " + note)),  # any message counts for prompt_contains
        asking(("assistant", note), ("user", "Which file?")),
        asking(("system", "Be terse."), ("user", "Which file builds the cache key?")),
        asking(("system", "Be terse."), ("user", "Which file builds the cache?")),  # no "key"
        asking(("user", "terse: which file builds the cache key?")),  # not a system message
        asking(("user", "Which file?"), role="auditor"),
        asking(("user", "answer with the file name only")),  # case matters
    ]
    replies = ask(provider, *calls)
    assert [reply.text for reply in replies] == [
        "runner/cache.py",
        "runner/cache.py",
        "runner/cache.py",
        "cache.py",
        "It is built in runner/cache.py.",
        "It is built in runner/cache.py.",
        "3",
        "It is built in runner/cache.py.",
    ]
    assert provider.script is not None
    where = provider.script.path
    assert replies[0].model == f"mock (case 1 of 'locate', {where}:4)"
    assert replies[3].model == f"mock (case 2 of 'locate', {where}:6)"
    assert replies[4].model == f"mock (case 4 of 'locate', {where}:10)"
    # The same request gets the same answer from a fresh provider too.
    assert texts(scripted(write, CASES), *calls) == [reply.text for reply in replies]


def test_an_entry_without_cases_answers_as_before_and_no_case_is_the_derived_reply(
    write: Write,
) -> None:
    provider = scripted(write, CASES)
    plain = ask(provider, asking(("user", "x"), node="plain"))[0]
    assert (plain.text, plain.model) == ("as before", "mock")
    unasked, asked = ask(
        provider, asking(("user", "Do it."), node="open"), asking(("user", "Why?"), node="open")
    )
    assert unasked.text == texts(MockProvider(), asking(("user", "Do it."), node="open"))[0]
    assert unasked.model == "mock (no case of 'open')"
    assert asked.text == "asked"


def test_each_case_walks_its_own_errors_and_replies(write: Write) -> None:
    provider = scripted(
        write,
        """\
        nodes:
          n:
            latency_ms: 0
            cases:
              - when: {prompt_contains: fix}
                errors: [429]
                replies: [one, two]
              - replies: [a, b]
        """,
    )
    fix, other = asking(("user", "fix it"), node="n"), asking(("user", "go"), node="n")
    error = failure(provider, fix)
    assert str(error) == "mock script: call 1 of n (case 1) failed with HTTP 429"
    assert texts(provider, other, fix, other, fix, fix) == ["a", "one", "b", "two", "two"]


def test_role_entries_answer_the_calls_no_node_entry_matches(write: Write) -> None:
    provider = scripted(
        write,
        """\
        nodes:
          review: {reply: node entry}
        roles:
          teacher:
            cases:
              - when: {prompt_contains: rambling}
                reply: {lessons: [{id: be-brief}]}
              - reply: {lessons: []}
          "writ*": {reply: by glob}
        """,
    )
    calls = [
        asking(
            ("user", "Evidence: the drafts are rambling."), node="learn.teacher", role="teacher"
        ),
        asking(("user", "Evidence: fine."), node="learn.teacher", role="teacher"),
        asking(("user", "Evidence: rambling."), node="review", role="teacher"),  # nodes first
        asking(("user", "Draft."), node="draft", role="writer"),
    ]
    assert texts(provider, *calls) == [
        '{"lessons":[{"id":"be-brief"}]}',
        '{"lessons":[]}',
        "node entry",
        "by glob",
    ]
    unscripted = asking(("user", "Hi."), node="draft", role="editor")
    assert texts(provider, unscripted) == texts(MockProvider(), unscripted)


def test_the_documented_teacher_proposes_the_note_the_documented_student_needs() -> None:
    from runner import docgen_config
    from runner.compiler.schema import load_schema

    staged = docgen_config.examples(load_schema("mock-script.schema.json"))[1]
    script = _script_of(staged)
    provider = MockProvider(script=script)
    question: tuple[ChatRole, str] = ("user", "Which file builds the cache key?")
    (before,) = texts(provider, asking(question))
    assert before != "runner/cache.py"
    evidence = f"Results by node id: {json.dumps({'locate': before})}"
    proposed, unasked = texts(
        provider,
        asking(("user", evidence), node="learn.teacher", role="teacher"),
        asking(("user", "Results: all passed."), node="learn.teacher", role="teacher"),
    )
    assert json.loads(unasked) == {"lessons": []}
    (lesson,) = json.loads(proposed)["lessons"]
    assert (lesson["kind"], lesson["target"]) == ("note", "role:locator")
    # Applied, the note is a system message of the student's calls: now it passes.
    note: tuple[ChatRole, str] = ("system", lesson["content"]["text"])
    assert texts(provider, asking(note, question)) == ["runner/cache.py"]


def _script_of(data: dict[str, Any]) -> MockScript:
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "learn.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return load_script(str(path))


# Concurrency


def test_a_thousand_concurrent_calls_succeed_and_are_deterministic(write: Write) -> None:
    requests = [
        request(node=f"review_one[{n}]", prompt=f"file {n % 10}", sample=n % 3) for n in range(1000)
    ]
    requests += [request(output_schema=REVIEW, sample=n) for n in range(1000)]

    async def run(provider: MockProvider) -> list[str]:
        replies = await asyncio.gather(*(provider.complete(one) for one in requests))
        return [reply.text for reply in replies]

    first = asyncio.run(run(MockProvider()))
    assert asyncio.run(run(MockProvider())) == first
    assert first == texts(MockProvider(), *requests)


def test_concurrent_scripted_calls_take_their_places_in_call_order(write: Write) -> None:
    provider = scripted(write, "nodes: {n: {replies: [a, b, c], errors: [429], latency_ms: 1}}")

    async def run() -> list[str]:
        calls = [provider.complete(request(node="n")) for _ in range(1000)]
        done = await asyncio.gather(*calls, return_exceptions=True)
        return [r.text if isinstance(r, ModelReply) else type(r).__name__ for r in done]

    assert asyncio.run(run()) == ["ProviderError", "a", "b", *["c"] * 997]


# Script files


def test_script_fields_are_read(write: Write) -> None:
    path = write(
        "script.yaml",
        """\
        defaults: {latency_ms: 5}
        nodes:
          "a*": {replies: [x, 1], errors: [502, timeout], latency_ms: 2.5}
          b: {}
          c:
            latency_ms: 1
            cases:
              - when: {prompt_contains: [p, q], system_contains: s, user_contains: u, role: r}
                score: 2
                errors: [503]
                latency_ms: 3
              - {}
        roles:
          teacher: {reply: {lessons: []}}
        """,
    )
    assert load_script(path) == MockScript(
        path=path,
        digest=hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        latency_ms=5.0,
        entries=(
            ScriptEntry(pattern="a*", replies=("x", "1"), errors=(502, "timeout"), latency_ms=2.5),
            ScriptEntry(pattern="b"),
            ScriptEntry(
                pattern="c",
                latency_ms=1.0,
                cases=(
                    ScriptCase(
                        when=When(
                            prompt_contains=("p", "q"),
                            system_contains=("s",),
                            user_contains=("u",),
                            role="r",
                        ),
                        replies=("2",),
                        errors=(503,),
                        latency_ms=3.0,
                    ),
                    ScriptCase(),
                ),
            ),
        ),
        roles=(ScriptEntry(pattern="teacher", replies=('{"lessons":[]}',)),),
    )


@pytest.mark.parametrize(
    ("text", "needle", "words"),
    [
        ("nodes:\n  a: {reply: x}\n  b: {replys: [x]}\n", "[x]", "unknown field 'replys'"),
        ("nodes:\n  a:\n    errors: [429, 404]\n", "404", "404"),
        ("nodes:\n  a:\n    reply: x\n    score: 1\n", "1", "both reply and score"),
        ("defaults: {latency_ms: -1}\n", "-1", "at least 0"),
        ("nodes:\n  a: {reply: [unclosed}\n", "}", "invalid YAML"),
        ("nodes:\n  a: {reply: x}\n  a: {reply: y}\n", "a: {reply: y}", "given twice"),
        ("# nothing here\n", "#", "empty"),
        (
            "nodes:\n  a:\n    cases:\n      - when: {prompt_contain: x}\n",
            "x}",
            "unknown field 'prompt_contain' in nodes.a.cases[0].when",
        ),
        (
            "nodes:\n  a:\n    cases:\n      - when: {role: r}\n"
            "      - when: {user_contains: ''}\n",
            "''",
            "nodes.a.cases[1].when.user_contains must not be empty",
        ),
        (
            "roles:\n  t:\n    cases:\n      - when: {prompt_contains: [x, '']}\n",
            "'']",
            "roles.t.cases[0].when.prompt_contains[1] must not be empty",
        ),
        (
            "nodes:\n  a:\n    cases:\n      - reply: x\n"
            "      - when: {role: r}\n        reply: y\n",
            "reply: x",
            "case 1 of the entry for 'a' has no `when`, so it answers every call and the cases "
            "after it are never tried",
        ),
        (
            "nodes:\n  a:\n    cases:\n      - when: {}\n",
            "{}",
            "case 1 of the entry for 'a' has an empty `when`",
        ),
        (
            "roles:\n  t:\n    reply: x\n    cases: [{reply: y}]\n",
            "x",
            "the entry for the role 't' gives both cases and reply",
        ),
        (
            "nodes:\n  a:\n    cases:\n      - {when: {role: r}, reply: x, replies: [y]}\n",
            "[y]",
            "case 1 of the entry for 'a' gives both reply and replies",
        ),
        ("nodes:\n  a:\n    cases: []\n", "[]", "nodes.a.cases needs at least 1 item"),
    ],
)
def test_script_errors_say_where(write: Write, text: str, needle: str, words: str) -> None:
    path = write("bad.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_script(path)
    line, col = position(text, needle)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}:{col}: "), message
    assert words in message
    assert "fix:" in message


def test_script_errors_count_the_others(write: Write) -> None:
    path = write("bad.yaml", "nodes:\n  a: {replys: x}\n  b: {score: high}\nextra: 1\n")
    with pytest.raises(ConfigError, match=r"\(and 2 more\)$"):
        load_script(path)


def test_a_missing_script_is_a_config_error(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="cannot read the mock script"):
        load_script(str(tmp_path / "missing.yaml"))


def test_the_script_schema_is_closed_and_described() -> None:
    schema = load_schema("mock-script.schema.json")
    Draft202012Validator.check_schema(schema)

    def walk(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("additionalProperties") is False, pointer
                for name, spec in node["properties"].items():
                    assert spec.get("description"), f"{pointer}/properties/{name}"
            for key, value in node.items():
                walk(value, f"{pointer}/{key}")

    walk(schema, "")
