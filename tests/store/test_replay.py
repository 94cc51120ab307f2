"""Replays: every call and command answered from the trace, outputs byte-identical, and the
first divergence stopping its node as replay_diverged with a readable diff."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from runner.main import main
from runner.store import runs
from runner.store.db import opened
from runner.store.trace import events

WORKFLOW = """\
version: 1
name: replayable
roles: {worker: {}}
permissions: {commands: ["python -c *"]}
steps:
  kind: sequence
  id: main
  steps:
    - kind: command
      id: facts
      run: ["python", "-c", "print('three facts')"]
    - kind: expand
      id: fan
      over: "[1, 2, 3]"
      as: item
      max_children: 3
      body:
        kind: leaf
        id: one
        role: worker
        prompt: "Judge item {{ item }} given {{ outputs.facts.stdout | trim }}"
        output:
          type: object
          properties: {ok: {type: boolean}}
          required: [ok]
    - kind: cond
      id: verdict
      if: "outputs.fan | selectattr('ok') | list | length >= 0"
      then: {kind: reduce, id: fine, inputs: [fan], expr: "'fine'"}
      else: {kind: reduce, id: bad, inputs: [fan], expr: "'bad'"}
"""


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    state = tmp_path / "state"
    assert main(["run", "wf.yaml", "--plain", "--state", str(state)]) == 0
    with opened(state, create=False) as conn:
        return state, runs.find(conn, "last").id


def _replay_events(state: Path) -> tuple[runs.RunRecord, list]:  # type: ignore[type-arg]
    with opened(state, create=False) as conn:
        record = runs.find(conn, "last")
        return record, events(conn, record.id)


def test_replay_answers_everything_from_the_trace(recorded: tuple[Path, str]) -> None:
    state, run_id = recorded
    assert main(["replay", run_id, "--plain", "--state", str(state)]) == 0
    replay, replayed = _replay_events(state)
    assert replay.mode == "replay"
    assert replay.parent == run_id
    assert replay.calls == 0
    # The recorded run answered, not the memo: the replay neither paid nor saved through it.
    assert (replay.memo_hits, replay.memo_misses, replay.saved_tokens) == (0, 0, 0)
    # Answered from the recorded run, which holds them: the replay records none of its own.
    assert not [e for e in replayed if e.type in ("model_call", "command")]
    with opened(state, create=False) as conn:
        original = runs.find(conn, run_id)
        originals = events(conn, run_id)
    assert replay.output == original.output

    def outputs(found: list) -> dict:  # type: ignore[type-arg]
        return {e.path: e.data["output"] for e in found if e.type == "node_finished"}

    assert outputs(replayed) == outputs(originals)
    # A replay of the replay finds the answers in the run the first replay answered from.
    assert main(["replay", replay.id, "--plain", "--state", str(state)]) == 0
    again, _ = _replay_events(state)
    assert (again.parent, again.status, again.output) == (replay.id, "succeeded", original.output)


def test_a_changed_prompt_diverges_with_a_diff(
    recorded: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    state, run_id = recorded
    changed = Path("changed.yaml")
    changed.write_text(
        textwrap.dedent(WORKFLOW).replace("Judge item", "Score item"), encoding="utf-8"
    )
    capsys.readouterr()
    assert main(["replay", run_id, "changed.yaml", "--plain", "--state", str(state)]) == 1
    out = capsys.readouterr().out
    replay, replayed = _replay_events(state)
    assert replay.status == "replay_diverged"
    diverged = [
        e for e in replayed if e.type == "node_finished" and e.data["status"] == "replay_diverged"
    ]
    assert {e.path for e in diverged} >= {"one[0]", "one[1]", "one[2]"}
    message = diverged[0].data["error"]
    assert "differs from the recorded one in: messages" in message
    assert "-[user] Judge item" in message
    assert "+[user] Score item" in message
    assert "replay_diverged" in out


def test_a_changed_command_and_a_changed_decision_diverge(recorded: tuple[Path, str]) -> None:
    state, run_id = recorded
    Path("cmd.yaml").write_text(
        textwrap.dedent(WORKFLOW).replace("three facts", "four facts"), encoding="utf-8"
    )
    assert main(["replay", run_id, "cmd.yaml", "--plain", "--state", str(state)]) == 1
    _, replayed = _replay_events(state)
    facts = next(e for e in replayed if e.type == "node_finished" and e.path == "facts")
    assert facts.data["status"] == "replay_diverged"
    assert "four facts" in facts.data["error"]
    assert not [e for e in replayed if e.type == "command"], "no command ran"

    Path("cond.yaml").write_text(
        textwrap.dedent(WORKFLOW).replace("length >= 0", "length < 0"), encoding="utf-8"
    )
    assert main(["replay", run_id, "cond.yaml", "--plain", "--state", str(state)]) == 1
    _, replayed = _replay_events(state)
    verdict = next(e for e in replayed if e.type == "node_finished" and e.path == "verdict")
    assert verdict.data["status"] == "replay_diverged"
    assert "decision" in verdict.data["error"]


def test_replaying_an_unknown_run_is_a_clear_error(
    recorded: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    state, _ = recorded
    capsys.readouterr()
    assert main(["replay", "nope", "--state", str(state)]) == 2
    assert "there is no run 'nope'" in capsys.readouterr().err


def test_allow_live_makes_the_calls_the_trace_does_not_answer(recorded: tuple[Path, str]) -> None:
    state, run_id = recorded
    Path("changed.yaml").write_text(
        textwrap.dedent(WORKFLOW).replace("Judge item", "Score item"), encoding="utf-8"
    )
    assert (
        main(["replay", run_id, "changed.yaml", "--allow-live", "--plain", "--state", str(state)])
        == 0
    )
    fork, found = _replay_events(state)
    assert fork.mode == "fork"
    assert fork.parent == run_id
    sources = [e.data["source"] for e in found if e.type in ("model_call", "command")]
    assert sources.count("live") == 3  # the three changed calls
    assert sources.count("trace") == 1  # the unchanged command
