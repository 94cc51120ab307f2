"""A cancel recorded in the state reaches a run that no signal can reach (another host)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from runner.store import runs
from runner.store.db import opened

WORKFLOW = """\
version: 1
name: napping
permissions: {commands: ["python -c *"]}
steps:
  kind: command
  id: nap
  run: ["python", "-c", "import time; time.sleep(30)"]
"""


def test_a_recorded_cancel_request_stops_the_run(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW, encoding="utf-8")
    state = tmp_path / "state"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "run", "wf.yaml", "--plain", "--state", str(state)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if (state / "state.db").exists():
                with opened(state, create=False) as conn:
                    if conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]:
                        break
            time.sleep(0.05)
        started = time.monotonic()
        with opened(state, create=False) as conn:
            runs.request_cancel(conn, runs.find(conn, "last").id)  # no signal sent
        out, _ = process.communicate(timeout=20)
        assert time.monotonic() - started < 10
    finally:
        process.kill()
    assert process.returncode == 130, out
    assert "cancelled from another process" in out
    with opened(state, create=False) as conn:
        assert runs.find(conn, "last").status == "cancelled"
