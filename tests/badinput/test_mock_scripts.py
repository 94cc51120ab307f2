"""Mock scripts (``run --mock-script``) mutated, damaged, or not files at all."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import GOOD_YAML

from badinput.cli import BAD, BAD_OR_FAILED, assert_clean, run_inprocess
from badinput.mutate import Variant, damaged, structural, to_yaml

# No latencies: a mutation that made one huge would only prove that sleeping takes long.
SCRIPT = """\
nodes:
  "review_one[0]":
    reply: {ok: true}
  "review_one*":
    replies: [{ok: false}, {ok: true}]
  "summary":
    errors: [429, timeout]
"""


def _variants() -> list[Variant]:
    variants = list(structural("script", yaml.safe_load(SCRIPT), to_yaml, count=5, required=set()))
    hurt = list(damaged("script", SCRIPT.encode()))
    return variants + hurt[:8] + hurt[13:16]  # empty, not UTF-8, ..., and cut short


HAND: dict[str, tuple[str, tuple[int, ...] | None]] = {
    "errors_unknown_status": ('nodes: {"review_one*": {errors: [999]}}', BAD),
    "errors_string": ('nodes: {"review_one*": {errors: ["boom"]}}', BAD),
    "errors_not_list": ('nodes: {"review_one*": {errors: 500}}', BAD),
    "errors_forever": ('nodes: {"review_one*": {errors: [500, 500, 500, 500, 500, 500]}}', None),
    "latency_negative": ('nodes: {"review_one*": {latency_ms: -1}}', BAD),
    "latency_string": ('nodes: {"review_one*": {latency_ms: soon}}', BAD),
    "latency_nan": ('nodes: {"review_one*": {latency_ms: .nan}}', BAD),
    "defaults_latency_nan": ("defaults: {latency_ms: .nan}", BAD),
    "defaults_list": ("defaults: []", BAD),
    "reply_and_replies": ('nodes: {"review_one*": {reply: 1, replies: [2]}}', BAD),
    "replies_empty": ('nodes: {"review_one*": {replies: []}}', BAD),
    "score_string": ('nodes: {"review_one*": {score: high}}', BAD),
    "score_nan": ('nodes: {"review_one*": {score: .nan}}', BAD),
    "reply_wrong_shape": ('nodes: {"review_one*": {reply: {ok: "yes"}}}', BAD_OR_FAILED),
    "reply_not_json_shape": ('nodes: {"review_one*": {reply: "not json at all"}}', BAD_OR_FAILED),
    "reply_nan": ('nodes: {"review_one*": {reply: {ok: .nan}}}', BAD),
    "reply_huge": ('nodes: {"review_one*": {reply: "' + "x" * 200_000 + '"}}', None),
    "reply_deep": ('nodes: {"review_one*": {reply: ' + "[" * 300 + "]" * 300 + "}}", None),
    "reply_template": ('nodes: {"review_one*": {reply: "{{ 7 * 7 }}"}}', None),
    "glob_unclosed_bracket": ('nodes: {"review_one[": {reply: {ok: true}}}', None),
    "glob_empty": ('nodes: {"": {reply: {ok: true}}}', BAD),
    "glob_int_key": ("nodes: {1: {reply: {ok: true}}}", BAD),
    "glob_matches_nothing": ('nodes: {"nothing*": {reply: {ok: true}}}', None),
    "entry_not_mapping": ('nodes: {"review_one*": 5}', BAD),
    "entry_unknown_field": ('nodes: {"review_one*": {answer: 5}}', BAD),
    "nodes_list": ("nodes: [a, b]", BAD),
    "nodes_null": ("nodes: null", BAD),
    "top_level_list": ("- a\n- b", BAD),
    "top_level_scalar": ("just text", BAD),
    "unknown_top_level": ("plans: {}", BAD),
    "a_workflow_instead": (GOOD_YAML, BAD),
    "cases_not_list": ('nodes: {"review_one*": {cases: {reply: 1}}}', BAD),
    "cases_empty": ('nodes: {"review_one*": {cases: []}}', BAD),
    "case_not_mapping": ('nodes: {"review_one*": {cases: [5]}}', BAD),
    "case_unknown_field": ('nodes: {"review_one*": {cases: [{if: {role: r}}]}}', BAD),
    "when_not_mapping": ('nodes: {"review_one*": {cases: [{when: text}]}}', BAD),
    "when_empty": ('nodes: {"review_one*": {cases: [{when: {}}]}}', BAD),
    "when_unknown_key": ('nodes: {"review_one*": {cases: [{when: {prompt_has: x}}]}}', BAD),
    "when_text_empty": ('nodes: {"review_one*": {cases: [{when: {prompt_contains: ""}}]}}', BAD),
    "when_texts_empty": ('nodes: {"review_one*": {cases: [{when: {user_contains: []}}]}}', BAD),
    "when_text_number": ('nodes: {"review_one*": {cases: [{when: {system_contains: 3}}]}}', BAD),
    "when_role_list": ('nodes: {"review_one*": {cases: [{when: {role: [a]}}]}}', BAD),
    "default_first": ('nodes: {"review_one*": {cases: [{reply: 1}, {when: {role: r}}]}}', BAD),
    "cases_and_errors": ('nodes: {"review_one*": {errors: [429], cases: [{reply: 1}]}}', BAD),
    "case_reply_nan": ('nodes: {"review_one*": {cases: [{reply: {ok: .nan}}]}}', BAD),
    "case_wrong_shape": ('nodes: {"review_one*": {cases: [{reply: {ok: "yes"}}]}}', BAD_OR_FAILED),
    "case_never_holds": (
        'nodes: {"review_one*": {cases: [{when: {role: nobody}, reply: 1}]}}',
        None,
    ),
    "roles_list": ("roles: [teacher]", BAD),
    "role_empty_name": ('roles: {"": {reply: 1}}', BAD),
    "role_entry_not_mapping": ("roles: {reviewer: 5}", BAD),
    "role_reply_wrong_shape": ("roles: {reviewer: {reply: {ok: 1}}}", BAD_OR_FAILED),
}


def _run(tmp_path: Path, script: Path, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    workflow = tmp_path / "good.yaml"
    workflow.write_text(GOOD_YAML, encoding="utf-8")
    argv = ["run", str(workflow), "--mock-script", str(script), "--plain"]
    return run_inprocess([*argv, "--state", str(tmp_path / "s")], capsys)


@pytest.mark.parametrize("variant", _variants(), ids=lambda v: v.id)
def test_script_variant(
    variant: Variant, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "script.yaml"
    script.write_bytes(variant.data)
    assert_clean(_run(tmp_path, script, capsys), allowed=BAD if variant.bad else None)


@pytest.mark.parametrize("case", sorted(HAND))
def test_hand_written_script(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, allowed = HAND[case]
    script = tmp_path / "script.yaml"
    script.write_text(text + "\n", encoding="utf-8")
    assert_clean(_run(tmp_path, script, capsys), allowed=allowed)


@pytest.mark.parametrize("what", ["missing", "directory", "latin1", "empty", "symlink_loop"])
@pytest.mark.parametrize("where", ["option", "config"])
def test_script_not_a_script(
    what: str, where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "script.yaml"
    if what == "directory":
        script.mkdir()
    elif what == "latin1":
        script.write_bytes(b"# r\xe9ponses\n" + SCRIPT.encode())
    elif what == "empty":
        script.write_bytes(b"")
    elif what == "symlink_loop":
        script.symlink_to(script)
    if where == "option":
        outcome = _run(tmp_path, script, capsys)
    else:
        config = f"providers:\n  dry: {{type: mock, script: {script}}}\n"
        config += "roles:\n  default: {provider: dry}\n"
        (tmp_path / "branchleaf.yaml").write_text(config, encoding="utf-8")
        workflow = tmp_path / "good.yaml"
        workflow.write_text(GOOD_YAML, encoding="utf-8")
        argv = ["run", str(workflow), "--plain", "--state", str(tmp_path / "s")]
        outcome = run_inprocess(argv, capsys)
    assert_clean(outcome, allowed=None if what == "empty" else BAD)
