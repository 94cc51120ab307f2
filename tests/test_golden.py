"""Golden traces: every example's recorded run, checked in under ``tests/golden/``, is imported
into a fresh state and replayed through the command line. The replay makes no model call and
runs no command (the examples' git and pytest commands are answered from the trace, so the
repository's history since the recording does not matter) and its outputs equal the recorded
ones. ``tests/golden/README.md`` says how to record them again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_examples import EXAMPLES

from runner.store import portable, runs
from runner.store.db import opened
from runner.store.trace import Event, events

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
TRACES = sorted(GOLDEN.glob("*.jsonl"))


def test_every_example_has_a_golden_trace() -> None:
    assert {Path(example).stem for example in EXAMPLES} == {trace.stem for trace in TRACES}


def _outputs(found: list[Event]) -> dict[str, object]:
    return {
        e.path: (e.data["status"], e.data["output"]) for e in found if e.type == "node_finished"
    }


@pytest.mark.parametrize("trace", TRACES, ids=[trace.stem for trace in TRACES])
def test_golden_trace_replays_without_calls_or_commands(trace: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    recorded = portable.loads(trace.read_bytes(), str(trace))
    with opened(state) as conn:
        run_id = portable.store(conn, recorded).run_id
    # The run recorded its declared env variables: a replay renders with those, whatever its
    # own environment holds (CI sets GITHUB_REPOSITORY, for one).
    declared = recorded.run["document"].get("env", [])
    env = {**os.environ, **dict.fromkeys(declared, "not-what-was-recorded")}
    options = ["--plain", "--state", str(state), "--report-dir", str(tmp_path / "reports")]
    done = subprocess.run(
        [sys.executable, "-m", "runner", "replay", run_id, *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with opened(state, create=False) as conn:
        original = runs.find(conn, run_id)
        (replay,) = [record for record in runs.listed(conn) if record.parent == run_id]
        replayed = events(conn, replay.id)
        originals = events(conn, run_id)
    assert (replay.mode, replay.status, replay.calls, replay.tokens) == (
        "replay",
        "succeeded",
        0,
        0,
    )
    # Every call and command was answered from the recorded run, so the replay records none
    # of its own (a live one would be recorded).
    assert not [e for e in replayed if e.type in ("model_call", "command")]
    assert [e for e in originals if e.type in ("model_call", "command")]
    assert _outputs(replayed) == _outputs(originals)
    assert replay.output == original.output
    assert replay.tests == original.tests
