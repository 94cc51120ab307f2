"""The state database: created and migrated once, shared by several processes at once."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runner.store import runs
from runner.store.db import SCHEMA_VERSION, StoreError, connect, opened

WORKFLOW = """\
version: 1
name: busy
roles: {worker: {}}
budget: {leaves: 400}
concurrency: {leaves: 16}
steps:
  kind: expand
  id: fan
  over: "range(300) | list"
  as: item
  max_children: 300
  body: {kind: leaf, id: one, role: worker, prompt: "Item {{ item }} of run {{ inputs.tag }}"}
inputs:
  tag: {type: string}
"""


def test_a_new_state_is_created_at_the_current_schema(tmp_path: Path) -> None:
    with opened(tmp_path / "s") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(StoreError, match="there is no Branchleaf state"):
        connect(tmp_path / "missing", create=False)


def test_a_state_of_schema_1_is_migrated_and_its_runs_still_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from runner.main import main
    from runner.store import runs
    from runner.store.db import MIGRATIONS

    raw = sqlite3.connect(tmp_path / "state.db")
    raw.executescript(MIGRATIONS[1] + "; PRAGMA user_version = 1;")
    raw.execute(
        "INSERT INTO runs (id, workflow, workflow_hash, document, inputs, config, providers,"
        " mode, status, started_at, updated_at) VALUES ('20250101-000000-abcdef', 'old', 'h',"
        " '{}', '{}', '{}', '{}', 'run', 'succeeded', 1, 2)"
    )
    raw.commit()
    raw.close()
    with opened(tmp_path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        old = runs.find(conn, "last")
    assert old.id == "20250101-000000-abcdef"
    assert old.overlay is None
    assert main(["runs", "--state", str(tmp_path)]) == 0
    assert "20250101-000000-abcdef" in capsys.readouterr().out


def test_a_state_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    connect(tmp_path).close()
    raw = sqlite3.connect(tmp_path / "state.db")
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(StoreError, match="newer Branchleaf"):
        connect(tmp_path)


def test_runs_and_a_reader_share_one_state(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(textwrap.dedent(WORKFLOW), encoding="utf-8")
    state = tmp_path / "state"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runner",
                "run",
                "wf.yaml",
                "--plain",
                "--state",
                str(state),
                "--input",
                f"tag={tag}",
                "--report-dir",
                str(tmp_path / f"r{tag}"),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for tag in range(3)
    ]
    reads = 0
    try:
        while any(p.poll() is None for p in processes):
            if (state / "state.db").exists():
                with opened(state, create=False) as conn:
                    runs.listed(conn)
                    conn.execute("SELECT COUNT(*) FROM events").fetchone()
                reads += 1
            time.sleep(0.01)
        outputs = [p.communicate(timeout=60)[0] for p in processes]
    finally:
        for p in processes:
            p.kill()
    for process, out in zip(processes, outputs, strict=True):
        assert process.returncode == 0, out
        assert "locked" not in out
    assert reads > 0
    with opened(state, create=False) as conn:
        finished = runs.listed(conn)
        assert len(finished) == 3
        assert all(r.status == "succeeded" and r.done == 301 for r in finished)
        per_run = conn.execute("SELECT run_id, COUNT(*) FROM events GROUP BY run_id").fetchall()
        assert sorted(count for _, count in per_run) == [902, 902, 902]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_state_with_an_older_layout_of_its_version_is_refused_clearly(tmp_path: Path) -> None:
    connect(tmp_path).close()
    raw = sqlite3.connect(tmp_path / "state.db")
    raw.execute("ALTER TABLE runs DROP COLUMN env")
    raw.close()
    with pytest.raises(StoreError, match=r"older layout of schema 2.*move it away"):
        connect(tmp_path)
