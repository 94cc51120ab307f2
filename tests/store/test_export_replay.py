"""An exported replay carries the answers it read from the runs it replays, so that it replays
in a state where those runs are not (issue 11, point 11)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from runner.main import main
from runner.store import runs
from runner.store.db import opened
from runner.store.trace import events

WORKFLOW = """\
version: 1
name: chained
roles: {worker: {}}
permissions: {commands: ["python -c *"]}
steps:
  kind: sequence
  id: main
  steps:
    - kind: command
      id: facts
      run: ["python", "-c", "print('two facts')"]
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
        output: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
"""


@pytest.fixture
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A state with a run, a replay of it and a replay of that replay: their ids in order."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    state = tmp_path / "state"
    assert main(["run", "wf.yaml", "--plain", "--state", str(state)]) == 0
    ids = [_last(state)]
    for _ in range(2):
        assert main(["replay", ids[-1], "--plain", "--state", str(state)]) == 0
        ids.append(_last(state))
    return state, ids


def _last(state: Path) -> str:
    with opened(state, create=False) as conn:
        return runs.find(conn, "last").id


def _replays_elsewhere(exported: Path, run_id: str, where: Path) -> runs.RunRecord:
    """Import the file into a fresh state and replay the run there; the replay's record."""
    state = where / "fresh"
    assert main(["trace", "import", str(exported), "--state", str(state)]) == 0
    assert main(["replay", run_id, "--plain", "--state", str(state)]) == 0
    with opened(state, create=False) as conn:
        replay = runs.find(conn, "last")
        replayed = events(conn, replay.id)
    assert (replay.mode, replay.parent, replay.status, replay.calls) == (
        "replay",
        run_id,
        "succeeded",
        0,
    )
    assert not [e for e in replayed if e.type == "model_call" and e.data["source"] != "trace"]
    return replay


@pytest.mark.parametrize("depth", [1, 2], ids=["replay", "replay of a replay"])
def test_an_exported_replay_replays_in_a_fresh_state_without_any_provider(
    depth: int,
    chain: tuple[Path, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state, ids = chain
    replay_id = ids[depth]
    exported = tmp_path / "replay.jsonl"
    assert main(["trace", "export", replay_id, "--state", str(state), "-o", str(exported)]) == 0
    assert "is a replay" not in capsys.readouterr().err
    lines = [json.loads(line) for line in exported.read_bytes().splitlines()]
    carried = [e for e in lines[1:] if e["type"] in ("model_call", "command")]
    assert sorted(e["path"] for e in carried) == ["facts", "one[0]", "one[1]", "one[2]"]
    assert {e["data"]["source"] for e in carried} == {"trace"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no workflow file and no original run here
    replay = _replays_elsewhere(exported, replay_id, elsewhere)
    with opened(state, create=False) as conn:
        assert replay.output == runs.find(conn, ids[0]).output


def test_an_exported_replay_is_the_same_file_twice_and_imports_back_as_identical(
    chain: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, ids = chain
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (first, second):
        assert main(["trace", "export", ids[1], "--state", str(state), "-o", str(path)]) == 0
    assert first.read_bytes() == second.read_bytes()
    capsys.readouterr()
    assert main(["trace", "import", str(first), "--state", str(state)]) == 0
    assert "identical: nothing imported" in capsys.readouterr().out


def test_an_imported_replay_exported_again_carries_its_answers_once(
    chain: tuple[Path, list[str]], tmp_path: Path
) -> None:
    state, ids = chain
    exported = tmp_path / "replay.jsonl"
    assert main(["trace", "export", ids[1], "--state", str(state), "-o", str(exported)]) == 0
    fresh = tmp_path / "fresh"
    assert main(["trace", "import", str(exported), "--state", str(fresh)]) == 0
    again = tmp_path / "again.jsonl"
    assert main(["trace", "export", ids[1], "--state", str(fresh), "-o", str(again)]) == 0
    assert again.read_bytes() == exported.read_bytes()
