"""Record the golden traces again: run every example of ``tests/test_examples.py`` with the mock
provider, as ``workflows/README.md`` says to run it, and export each run to
``tests/golden/<workflow file stem>.jsonl``. See ``tests/golden/README.md``.

    .venv/bin/python tests/golden/record.py
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
HISTORY_AT = "9487d3d"
"""The commit the examples that read git history are recorded at: their diffs then stay a few
kilobytes, rather than growing with every commit (golden traces included) after it."""
READS_HISTORY = {"pr_triage.yaml", "docs_sync.star", "release_notes.star"}


def main() -> int:
    """Record every example and export its run; 1 if one of them does not succeed."""
    sys.path.insert(0, str(ROOT / "tests"))
    examples: dict[str, list[str]] = importlib.import_module("test_examples").EXAMPLES
    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch) / "state"
        checkout = Path(scratch) / "checkout"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(checkout), HISTORY_AT],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            return _record(examples, state, checkout, scratch)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(checkout)],
                cwd=ROOT,
                check=False,
                capture_output=True,
            )


def _record(examples: dict[str, list[str]], state: Path, checkout: Path, scratch: str) -> int:
    from runner.store import runs
    from runner.store.db import opened

    for example, given in sorted(examples.items()):
        # Paths absolute: the history readers run in the checkout of HISTORY_AT.
        args = [str(ROOT / a) if a.startswith("workflows/") else a for a in given]
        cwd = checkout if example in READS_HISTORY else ROOT
        done = _runner(
            ["run", str(ROOT / "workflows" / example), *args, "--plain", "--report-dir", scratch],
            state,
            cwd,
        )
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            print(f"{example} did not succeed: no golden trace written", file=sys.stderr)
            return 1
        with opened(state, create=False) as conn:
            run_id = runs.find(conn, "last").id
        target = GOLDEN / f"{Path(example).stem}.jsonl"
        exported = _runner(["trace", "export", run_id, "-o", str(target)], state, ROOT)
        print(exported.stdout.strip() or exported.stderr.strip())
    return 0


def _runner(argv: list[str], state: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    # -P: this repository's runner, not the one of the checkout the command runs in.
    return subprocess.run(
        [sys.executable, "-P", "-m", "runner", *argv, "--state", str(state)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


if __name__ == "__main__":
    sys.exit(main())
