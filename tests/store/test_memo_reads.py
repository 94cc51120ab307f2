"""Memo hits read ahead: a run answered by the memo reads the replies of many entries per
query, and answers every call with the reply its memo entry points at."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from runner.compiler.build import build_workflow
from runner.config import DEFAULT
from runner.executor.engine import Engine, run_sync
from runner.executor.results import RunResult
from runner.main import main
from runner.providers.registry import build_providers
from runner.status import Status
from runner.store.memo import READ_AHEAD
from runner.store.recording import Recording

LEAVES = 300


def _fan_out() -> dict[str, Any]:
    return {
        "version": 1,
        "name": "fan",
        "roles": {"worker": {}},
        "budget": {"leaves": LEAVES},
        "steps": {
            "kind": "expand",
            "id": "fan",
            "over": f"range({LEAVES}) | list",
            "as": "item",
            "max_children": LEAVES,
            "body": {"kind": "leaf", "id": "one", "role": "worker", "prompt": "Item {{ item }}"},
        },
    }


def _run(state: Path, statements: list[str] | None = None) -> RunResult:
    workflow = build_workflow(_fan_out())
    providers = build_providers(DEFAULT, [name for name, _ in workflow.roles or ()])
    recording = Recording(
        state,
        workflow=workflow,
        inputs={},
        env={},
        config=DEFAULT,
        providers=providers,
        mock_script=None,
        mode="run",
    )
    if statements is not None:
        recording.conn.set_trace_callback(statements.append)
    engine = Engine(
        workflow,
        config=DEFAULT,
        providers=providers,
        workspace=state,
        memo=recording.memo,
        journal=recording.journal,
    )
    result = run_sync(engine.run({}))
    recording.conn.set_trace_callback(None)
    recording.close(result)
    assert result.status is Status.SUCCEEDED, result.reason
    return result


def test_a_run_from_the_memo_reads_many_replies_per_query(tmp_path: Path) -> None:
    first = _run(tmp_path / "s")
    statements: list[str] = []
    again = _run(tmp_path / "s", statements)
    assert again.output == first.output
    assert sum(node.spend.memo_hits for node in again.nodes) == LEAVES
    reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    # One lookup and one read ahead per READ_AHEAD hits, not a query per hit.
    assert len(reads) <= 4 * (LEAVES // READ_AHEAD + 1) + 2, reads[:5]


def test_a_hit_answers_with_the_reply_its_entry_points_at(tmp_path: Path) -> None:
    first = _run(tmp_path / "s")
    with sqlite3.connect(tmp_path / "s" / "state.db") as db:
        # Point the entry of item 0's call at the reply of item 1's, as a later run that
        # stored the same key again would have.
        (seq0,), (seq1,) = db.execute(
            "SELECT seq FROM events WHERE type = 'model_call' AND path IN ('one[0]', 'one[1]')"
            " ORDER BY path"
        ).fetchall()
        db.execute("UPDATE memo SET seq = ? WHERE seq = ?", (seq1, seq0))
    again = _run(tmp_path / "s")
    outputs = {node.path: node.output for node in again.nodes}
    before = {node.path: node.output for node in first.nodes}
    assert outputs["one[0]"] == before["one[1]"] != before["one[0]"]
    assert all(outputs[p] == before[p] for p in before if p.startswith("one[") and p != "one[0]")


def test_a_damaged_memo_entry_is_said_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nname: fan\nroles: {worker: {}}\nsteps:\n  kind: expand\n  id: fan\n"
        '  over: "range(5) | list"\n  as: item\n  max_children: 5\n'
        '  body: {kind: leaf, id: one, role: worker, prompt: "Item {{ item }}"}\n'
    )
    assert main(["run", "wf.yaml", "--plain", "--state", "s"]) == 0
    with sqlite3.connect(tmp_path / "s" / "state.db") as db:
        db.execute(
            "UPDATE events SET data = '{not json' WHERE type = 'model_call' AND path = 'one[2]'"
        )
    capsys.readouterr()
    assert main(["run", "wf.yaml", "--plain", "--state", "s"]) == 1
    out = capsys.readouterr().out
    assert "one[2]: the state in s is damaged (a stored row is not valid JSON)" in out
    assert "internal error" not in out
