"""A run killed with SIGKILL at a random moment, then resumed, ends with the outputs of an
uninterrupted run and pays for no finished model call or command twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from runner.store import runs
from runner.store.db import opened
from runner.store.trace import events

WORKFLOW = """\
version: 1
name: killable
roles: {worker: {}}
concurrency: {leaves: 3}
permissions: {commands: ["python -c *"]}
steps:
  kind: sequence
  id: main
  steps:
    - kind: command
      id: setup
      run: ["python", "-c", "print('ready')"]
    - kind: expand
      id: fan
      over: "range(12) | list"
      as: item
      max_children: 12
      body:
        kind: leaf
        id: one
        role: worker
        prompt: "Item {{ item }} after {{ outputs.setup.stdout | trim }}"
        output:
          type: object
          properties: {n: {type: integer}, ok: {type: boolean}}
          required: [n, ok]
    - kind: reduce
      id: total
      inputs: [fan]
      expr: "outputs.fan | map(attribute='n') | sum"
"""

SCRIPT = """\
defaults: {latency_ms: 60}
nodes: {}
"""


def _runner(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = process.communicate(timeout=120)
    return process.returncode, out


def _outputs(state: Path, run_id: str) -> dict[str, Any]:
    with opened(state, create=False) as conn:
        return {
            e.path: e.data["output"]
            for e in events(conn, run_id)
            if e.type == "node_finished" and e.data["status"] == "succeeded"
        }


def _live_keys(state: Path, run_id: str) -> list[str]:
    with opened(state, create=False) as conn:
        return [
            f"{e.type}:{e.path}:{e.key}"
            for e in events(conn, run_id)
            if e.type in ("model_call", "command") and e.data["source"] == "live"
        ]


def _wait_for_events(state: Path) -> None:
    """Until the run has recorded something (its process needs a moment to start)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if (state / "state.db").exists():
            with opened(state, create=False) as conn:
                if conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]:
                    return
        time.sleep(0.01)
    raise AssertionError("the run recorded nothing within 20 s")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    (tmp_path / "script.yaml").write_text(SCRIPT, encoding="utf-8")
    return tmp_path


def _run_args(state: Path) -> list[str]:
    return [
        "run",
        "wf.yaml",
        "--mock-script",
        "script.yaml",
        "--plain",
        "--state",
        str(state),
        "--report-dir",
        str(state / "reports"),
    ]


def test_killed_runs_resume_to_the_same_outputs_without_paying_twice(project: Path) -> None:
    clean_state = project / "clean"
    code, out = _finish(_runner(_run_args(clean_state), project))
    assert code == 0, out
    with opened(clean_state, create=False) as conn:
        clean = runs.find(conn, "last")
    expected = _outputs(clean_state, clean.id)
    assert expected["total"] == sum(item["n"] for item in expected["fan"])

    rng = random.Random(7)
    resumed_count = 0
    for attempt in range(3):
        state = project / f"killed{attempt}"
        process = _runner(_run_args(state), project)
        _wait_for_events(state)
        time.sleep(rng.uniform(0.0, 0.3))  # the calls take about 0.3 s: kill it midway
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        with opened(state, create=False) as conn:
            killed = runs.find(conn, "last")
        assert runs.shown_status(killed) in (runs.CRASHED, "succeeded")
        if runs.shown_status(killed) == "succeeded":
            continue  # finished before the kill: nothing to resume this time
        resumed_count += 1
        paid_before = _live_keys(state, killed.id)
        code, out = _finish(
            _runner(
                [
                    "resume",
                    killed.id,
                    "--plain",
                    "--state",
                    str(state),
                    "--report-dir",
                    str(state / "reports"),
                ],
                project,
            )
        )
        assert code == 0, out
        with opened(state, create=False) as conn:
            resumed = runs.find(conn, "last")
            assert resumed.parent == killed.id
            assert runs.find(conn, killed.id).status == runs.CRASHED
        assert _outputs(state, resumed.id) == expected
        paid_after = _live_keys(state, resumed.id)
        assert not set(paid_before) & set(paid_after), "a finished call was paid twice"
        assert len(paid_before) + len(paid_after) >= len(set(paid_before + paid_after))
    assert resumed_count >= 2, "the kills should mostly land while the run is going"


def test_a_second_identical_run_makes_no_provider_call(project: Path) -> None:
    state = project / "state"
    for _ in range(2):
        code, out = _finish(_runner(_run_args(state), project))
        assert code == 0, out
    with opened(state, create=False) as conn:
        second, first = runs.listed(conn, 2)
    assert first.calls == 12
    assert second.calls == 0
    assert second.memo_hits == 12
    assert second.saved_tokens == first.tokens
    assert json.dumps(_outputs(state, first.id), sort_keys=True) == json.dumps(
        _outputs(state, second.id), sort_keys=True
    )
